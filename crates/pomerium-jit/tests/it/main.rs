//! The integration suite: spawns the real `pomerium-jit` binary on a random
//! loopback port against the fake Pomerium Zero and the fake Pomerium signer,
//! and drives it over HTTP as Pomerium and browsers would.

mod harness;

mod api;
mod audit;
mod browser;
mod cli;
mod config;
mod deploy;
mod doctor;
mod failover;
mod faults;
mod flow;
mod layout;
mod metrics;
mod notify;
mod slack;
mod startup;
mod tls;
mod web;
