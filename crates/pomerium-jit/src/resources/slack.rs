//! The `[slack]` section of the config file: who each Slack member is here,
//! for approving from Slack's buttons.
//!
//! ```toml
//! [slack]
//! # Slack member ID → the email that person signs in to Pomerium with.
//! users = { U012AB3CD = "carol@example.com", U045EF6GH = "dave@example.com" }
//! # Optional: their groups, as the assertion's `groups` claim names them.
//! groups = { U012AB3CD = ["admins"] }
//! ```

use std::collections::BTreeMap;

use jit_web::{SlackPerson, SlackUserId};
use serde::Deserialize;
use serde::de::{Deserializer, Error as _};
use toml::Spanned;

use super::{Addr, Found};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSlack {
    #[serde(default)]
    users: BTreeMap<Member, Addr>,
    groups: Option<Spanned<BTreeMap<Member, Vec<String>>>>,
}

/// A Slack member ID, checked where the TOML reader can say where.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Member(SlackUserId);

impl<'de> Deserialize<'de> for Member {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map(Member).map_err(D::Error::custom)
    }
}

impl RawSlack {
    /// The table; whatever is wrong goes to `found`.
    pub(super) fn build(self, found: &mut Found) -> BTreeMap<SlackUserId, SlackPerson> {
        let mut groups = BTreeMap::new();
        if let Some(raw) = self.groups {
            let span = raw.span();
            for (member, names) in raw.into_inner() {
                if !self.users.contains_key(&member) {
                    found.push((
                        span.clone(),
                        format!(
                            "[slack] groups names {}, who is not in [slack] users; add their email there",
                            member.0
                        ),
                    ));
                }
                let names: Vec<String> = names.iter().map(|g| g.trim().to_owned()).collect();
                if names.iter().any(String::is_empty) {
                    found.push((
                        span.clone(),
                        format!("[slack] groups of {}: a group name is empty", member.0),
                    ));
                }
                groups.insert(member.0, names);
            }
        }
        self.users
            .into_iter()
            .map(|(Member(id), Addr(email))| {
                let groups = groups.remove(&id).unwrap_or_default();
                (id, SlackPerson { email, groups })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;

    const ONE: &str =
        "[[resource]]\nname = \"db\"\ntitle = \"DB\"\npolicy = { name = \"jit-db\" }\n";

    #[test]
    fn the_table_maps_members_to_emails_and_groups() {
        let text = format!(
            "{ONE}\n[slack]\nusers = {{ U012AB3CD = \"carol@example.com\", W0DAVE = \" dave@example.com \" }}\n\
             groups = {{ U012AB3CD = [\"admins\", \"dba\"] }}\n"
        );
        let file = parse(&text).unwrap();
        let carol = &file.slack_users[&"U012AB3CD".parse().unwrap()];
        assert_eq!(carol.email.as_str(), "carol@example.com");
        assert_eq!(carol.groups, ["admins", "dba"]);
        let dave = &file.slack_users[&"W0DAVE".parse().unwrap()];
        assert_eq!(dave.email.as_str(), "dave@example.com");
        assert!(dave.groups.is_empty());
        // No section, no table.
        assert!(parse(ONE).unwrap().slack_users.is_empty());
    }

    #[test]
    fn each_mistake_is_named_where_it_is() {
        for (section, line, needle) in [
            (
                "users = { carol = \"carol@example.com\" }",
                7,
                "is not a Slack user id",
            ),
            ("users = { U1CAROL = \"carol\" }", 7, "`carol`"),
            ("usres = {}", 7, "unknown field `usres`"),
            (
                "users = { U1CAROL = \"carol@example.com\" }\ngroups = { U2DAVE = [\"dba\"] }",
                8,
                "U2DAVE, who is not in [slack] users",
            ),
            (
                "users = { U1CAROL = \"carol@example.com\" }\ngroups = { U1CAROL = [\" \"] }",
                8,
                "a group name is empty",
            ),
        ] {
            let text = format!("{ONE}\n[slack]\n{section}\n");
            let problems = parse(&text).unwrap_err();
            assert_eq!(problems.len(), 1, "{section}: {problems:?}");
            assert!(
                problems[0].message.contains(needle),
                "{section}: {problems:?}"
            );
            assert_eq!(problems[0].line, line, "{section}: {problems:?}");
        }
    }
}
