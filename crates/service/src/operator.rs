//! What an operator does at the command line (`pomerium-jit revoke`,
//! `grant`). They run with the service's own database settings, so they
//! hold the database's rights: no admin or approver check applies, and
//! every change is audited under their name (`cli:<name>`).

use jit_domain::{Actor, Ask, Email, GrantDuration, Operator, Reason};
use time::OffsetDateTime;

use crate::{Outcome, Service, ServiceError};

impl Service {
    /// Ends `email`'s pending request (rejected) or active access
    /// (revoked) on `resource`, as an approver's revoke does.
    pub async fn revoke_as_operator(
        &self,
        operator: &Operator,
        resource: &str,
        email: &Email,
        comment: Option<Reason>,
    ) -> Result<Outcome, ServiceError> {
        let desk = self.desk(resource)?;
        let by = Actor::Cli(operator.clone());
        let now = OffsetDateTime::now_utc();
        self.decide(desk, email, |open| {
            desk.resource.rules.revoke_as(open, email, by, comment, now)
        })
        .await
    }

    /// Break-glass: grants `email` access to `resource` for `duration` at
    /// once, bypassing approvals (see [`jit_domain::Rules::break_glass`]).
    /// Logged at warn: it is the one grant nobody approved.
    pub async fn break_glass(
        &self,
        operator: &Operator,
        resource: &str,
        email: &Email,
        ask: Ask,
        duration: GrantDuration,
    ) -> Result<Outcome, ServiceError> {
        let desk = self.desk(resource)?;
        let by = Actor::Cli(operator.clone());
        let now = OffsetDateTime::now_utc();
        let outcome = self
            .decide(desk, email, |open| {
                desk.resource
                    .rules
                    .break_glass(open, email, by, ask, duration, now)
            })
            .await?;
        tracing::warn!(
            operator = %operator,
            email = %email,
            resource,
            %duration,
            "break-glass grant: access given without approval"
        );
        Ok(outcome)
    }
}
