//! The reconciler against an in-memory Zero that loses answers, stalls and
//! fails on cue: the named fault cases and a seeded simulation.

mod cases;
mod mem_zero;
mod pg;
mod resources;
mod rig;
mod simulation;
