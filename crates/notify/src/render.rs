//! Messages, rendered once when a notice is expanded, so every retry sends
//! the same bytes.

use jit_domain::{Action, Request, Resource};
use jit_store::Notice;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::Url;

use crate::route::{Ask, Audience};

/// What every rendering needs about one notice.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The notice's key: the stem of each delivery's idempotency key.
    pub key: &'a str,
    pub notice: &'a Notice,
    pub request: &'a Request,
    pub resource: &'a Resource,
    pub audience: Audience,
    pub app_url: Option<&'a Url>,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

impl Facts<'_> {
    /// A link to the request: the approvers' view or the requester's.
    fn link(&self, for_approvers: bool) -> Option<String> {
        let base = self.app_url?;
        let path = if for_approvers {
            "admin/requests"
        } else {
            "requests"
        };
        base.join(&format!("{path}/{}", self.request.id))
            .ok()
            .map(String::from)
    }

    /// One sentence saying what happened.
    pub fn headline(&self) -> String {
        let who = &self.request.email;
        let what = &self.resource.title;
        match self.notice {
            Notice::ExpirySoon { expires_at } => {
                format!("{who}'s access to {what} ends at {}", rfc3339(*expires_at))
            }
            Notice::Event { event, .. } => {
                let actor = event.actor.label();
                let mut s = match event.action {
                    Action::Requested => {
                        let mut s = format!("{who} asks for access to {what}");
                        if let Some(d) = self.request.ask.duration {
                            s.push_str(&format!(" for {d}"));
                        }
                        s
                    }
                    Action::ExtensionRequested => {
                        format!("{who} asks for more time on {what}")
                    }
                    Action::Approved if event.details.get("rule").is_some() => format!(
                        "{who}'s access to {what} was approved automatically (rule {})",
                        event.details["rule"].as_str().unwrap_or("?")
                    ),
                    Action::Expired => format!("{who}'s access to {what} expired"),
                    Action::TimedOut => {
                        format!("{who}'s request for {what} timed out unanswered")
                    }
                    Action::Cancelled => format!("{who} withdrew their request for {what}"),
                    Action::GaveBack => format!("{who} gave back their access to {what}"),
                    Action::Rejected => format!("{actor} rejected {who}'s request for {what}"),
                    Action::ExtensionRejected => {
                        format!("{actor} declined {who}'s extension on {what}")
                    }
                    Action::Reviewed => format!(
                        "{actor} approved {who}'s request for {what} ({} of {} approvals)",
                        event.details["approvals"], event.details["needed"]
                    ),
                    action => format!("{actor} {} {who}'s access to {what}", action.word()),
                };
                if matches!(event.action, Action::Approved | Action::Extended)
                    && let Some(until) = event.details.get("expires_at").and_then(Value::as_str)
                {
                    s.push_str(&format!(", until {until}"));
                }
                if self.audience.loud {
                    s = format!("BREAK-GLASS: {s}");
                }
                s
            }
        }
    }

    /// Reason, ticket and comment, one per line, as given.
    fn particulars(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let r = self.request;
        if let Some(reason) = r.reason() {
            lines.push(format!("Reason: {}", reason.as_str()));
        }
        if let Some(t) = &r.ask.ticket {
            lines.push(format!("Ticket: {}", t.as_str()));
        }
        if let Some(ext) = &r.extension
            && let Some(reason) = &ext.reason
        {
            lines.push(format!("Extension reason: {}", reason.as_str()));
        }
        if let Notice::Event { event, .. } = self.notice
            && let Some(c) = event.details.get("comment").and_then(Value::as_str)
        {
            lines.push(format!("Comment: {c}"));
        }
        lines
    }

    /// The generic webhook's JSON body.
    pub fn webhook(&self, channel: &str) -> String {
        let (kind, event) = match self.notice {
            Notice::Event { seq, event } => (
                "event",
                json!({
                    "seq": seq,
                    "at": rfc3339(event.at),
                    "actor": event.actor.to_string(),
                    "action": event.action.as_str(),
                    "details": event.details,
                }),
            ),
            Notice::ExpirySoon { expires_at } => {
                ("expiry_soon", json!({ "expires_at": rfc3339(*expires_at) }))
            }
        };
        let r = self.request;
        json!({
            "idempotency_key": delivery_key(self.key, channel, None),
            "type": kind,
            "text": self.headline(),
            "break_glass": self.audience.loud,
            "event": event,
            "request": {
                "id": r.id.to_string(),
                "resource": r.resource.as_str(),
                "email": r.email.as_str(),
                "status": r.state.status().as_str(),
                "reason": r.reason().map(|x| x.as_str()),
                "ticket": r.ask.ticket.as_ref().map(|t| t.as_str()),
                "expires_at": r.state.grant().map(|g| rfc3339(g.expires_at)),
                "url": self.link(true),
            },
        })
        .to_string()
    }

    /// A Slack incoming-webhook message: the headline, particulars, a link,
    /// and for an ask, Approve / Reject buttons whose `value` is the
    /// request id (read by `POST /slack/actions`).
    pub fn slack(&self) -> String {
        let mut text = self.headline();
        if self.audience.loud {
            text = format!("<!here> :rotating_light: {text}");
        }
        let mut body = text.clone();
        for line in self.particulars() {
            body.push_str(&format!("\n>{}", escape_slack(&line)));
        }
        if let Some(link) = self.link(true) {
            body.push_str(&format!("\n<{link}|Open the request>"));
        }
        let mut blocks = vec![json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": body },
        })];
        if let Some(ask) = self.audience.ask {
            let (approve, reject) = match ask {
                Ask::Request => ("jit_approve", "jit_reject"),
                Ask::Extension => ("jit_approve_extension", "jit_reject_extension"),
            };
            let id = self.request.id.to_string();
            blocks.push(json!({
                "type": "actions",
                "block_id": format!("jit:{id}"),
                "elements": [
                    { "type": "button", "action_id": approve, "style": "primary",
                      "text": { "type": "plain_text", "text": "Approve" }, "value": id },
                    { "type": "button", "action_id": reject, "style": "danger",
                      "text": { "type": "plain_text", "text": "Reject" }, "value": id },
                ],
            }));
        }
        json!({ "text": text, "blocks": blocks }).to_string()
    }

    /// A mail to one person: subject and plain text, as JSON.
    pub fn email(&self, to_requester: bool) -> String {
        let subject = self.headline();
        let mut text = format!("{subject}.\n");
        for line in self.particulars() {
            text.push_str(&format!("\n{line}"));
        }
        if self.audience.ask.is_some() && !to_requester {
            text.push_str("\n\nYou are an approver of this resource; decide on the page below.");
        }
        if let Some(link) = self.link(!to_requester) {
            text.push_str(&format!("\n\n{link}\n"));
        }
        json!({ "subject": subject, "text": text }).to_string()
    }
}

/// The idempotency key of a notice's delivery over `channel` (to `to`).
pub fn delivery_key(notice_key: &str, channel: &str, to: Option<&str>) -> String {
    match to {
        Some(to) => format!("{notice_key}:{channel}:{to}"),
        None => format!("{notice_key}:{channel}"),
    }
}

/// Slack's mrkdwn control characters, escaped as its docs ask.
fn escape_slack(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use jit_domain::{Email, Rules};
    use time::macros::datetime;

    #[test]
    fn slack_asks_carry_the_buttons_s_reads() {
        let rules = Rules::default();
        let alice = Email::parse("alice@x.test").unwrap();
        let t = rules
            .request(
                None,
                &alice,
                jit_domain::Reason::parse("INC-1: <fix> & go").unwrap(),
                datetime!(2026-11-30 12:00 UTC),
            )
            .unwrap()
            .remove(0);
        let resource = Resource::original("jit-example", rules);
        let notice = Notice::Event {
            seq: 7,
            event: t.event,
        };
        let url = Url::parse("https://jit.example.com/").unwrap();
        let facts = Facts {
            key: "audit:7",
            notice: &notice,
            request: &t.request,
            resource: &resource,
            audience: Audience {
                approvers: true,
                ask: Some(Ask::Request),
                ..Audience::default()
            },
            app_url: Some(&url),
        };
        let msg: Value = serde_json::from_str(&facts.slack()).unwrap();
        let actions = &msg["blocks"][1];
        assert_eq!(actions["type"], "actions");
        let id = t.request.id.to_string();
        let buttons: Vec<(&str, &str)> = actions["elements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["action_id"].as_str().unwrap(),
                    b["value"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            buttons,
            [("jit_approve", id.as_str()), ("jit_reject", id.as_str())]
        );
        let text = msg["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(text.contains("&lt;fix&gt; &amp; go"), "{text}");
        assert!(
            text.contains(&format!("https://jit.example.com/admin/requests/{id}")),
            "{text}"
        );

        let hook: Value = serde_json::from_str(&facts.webhook("hook")).unwrap();
        assert_eq!(hook["idempotency_key"], "audit:7:hook");
        assert_eq!(hook["event"]["action"], "requested");
        assert_eq!(hook["request"]["id"], id);

        let mail: Value = serde_json::from_str(&facts.email(false)).unwrap();
        assert_eq!(
            mail["subject"],
            "alice@x.test asks for access to Protected app"
        );
    }
}
