//! What must hold: at every step, when the world has settled, and at the
//! end; and the report of a failure.

use super::*;

impl World {
    pub(super) fn settled(&self) -> bool {
        !self.stormy
            && self.client.starting.is_empty()
            && self.server.ops.iter().all(|op| op.is_terminal())
            && self
                .client
                .session
                .operations()
                .all(|view| view.finished || view.problem == Some(&Problem::NotFound))
    }

    /// At every step: every event the client shows was committed by the
    /// server in the epoch the client believes, at that seq.
    pub(super) fn check_never_shows_uncommitted(&mut self) {
        if self.violation.is_some() {
            return;
        }
        for view in self.client.session.operations() {
            let Some(op) = self.server.find(&view.tracked.id) else {
                if !view.log.is_empty() {
                    self.violation = Some(format!("events shown for unknown {}", view.tracked.id));
                }
                continue;
            };
            let streams = &self.server.ops[op].streams;
            let stream = match view.epoch {
                Some(epoch) if epoch.0 >= 1 && epoch.0 as usize <= streams.len() => {
                    &streams[(epoch.0 - 1) as usize]
                }
                None if view.log.is_empty() => continue,
                other => {
                    self.violation = Some(format!(
                        "{} shows events under epoch {other:?}, which the server never had",
                        view.tracked.id
                    ));
                    return;
                }
            };
            // Ids name (operation, epoch, seq) here, so comparing them is
            // comparing events; the final check compares them in full.
            for event in view.log.iter() {
                let seq = event.seq.map_or(0, |s| s.0) as usize;
                if seq == 0 || stream.get(seq - 1).is_none_or(|e| e.id != event.id) {
                    self.violation = Some(format!(
                        "the client shows {} at seq {seq} in epoch {:?}, which the server never committed there",
                        event.id, view.epoch
                    ));
                    return;
                }
            }
        }
    }

    pub(super) fn check_final(&self) -> Result<(), String> {
        let session = &self.client.session;
        let tracked: BTreeSet<OperationId> = session.tracked().into_iter().map(|t| t.id).collect();
        if tracked != self.expected {
            return Err(self.fail(&format!(
                "tracked set {tracked:?} differs from expected {:?}",
                self.expected
            )));
        }
        let persisted: Vec<_> = self
            .client
            .persisted
            .iter()
            .map(|t| (t.id.clone(), t.status))
            .collect();
        let current: Vec<_> = session
            .tracked()
            .into_iter()
            .map(|t| (t.id, t.status))
            .collect();
        if persisted != current {
            return Err(self.fail(&format!(
                "persisted {persisted:?} is not the tracked set {current:?}"
            )));
        }
        if !self.client.starting.is_empty() {
            return Err(self.fail(&format!(
                "starts never finished for whoever asked: {:?}",
                self.client.starting
            )));
        }
        if session.connection() != ConnectionState::Idle {
            return Err(self.fail(&format!(
                "connection is {:?} with nothing left to follow",
                session.connection()
            )));
        }
        for view in session.operations() {
            let id = &view.tracked.id;
            let Some(op) = self.server.find(id) else {
                if view.problem != Some(&Problem::NotFound) || !view.log.is_empty() {
                    return Err(self.fail(&format!(
                        "unknown operation {id}: problem {:?}, {} events",
                        view.problem,
                        view.log.len()
                    )));
                }
                continue;
            };
            let op = &self.server.ops[op];
            let shown: Vec<_> = view.log.iter().cloned().collect();
            if shown != op.events() {
                let seqs = |events: &[optrail_core::Event]| {
                    events
                        .iter()
                        .map(|e| format!("{}:{}", e.seq.map_or(0, |s| s.0), e.id))
                        .collect::<Vec<_>>()
                };
                return Err(self.fail(&format!(
                    "operation {id}: the client shows\n  {:?}\nbut the server has (epoch {})\n  {:?}",
                    seqs(&shown),
                    op.epoch(),
                    seqs(op.events())
                )));
            }
            let problems = [
                (view.status != op.status(), "status"),
                (!view.finished, "finished"),
                (view.epoch != Some(op.epoch()), "epoch"),
                (view.recovery == Recovery::CatchingUp, "recovery"),
                (
                    view.tracked.status != Some(op.status()),
                    "remembered status",
                ),
                (
                    matches!(view.problem, Some(p) if !matches!(p, Problem::CancelFailed(_))),
                    "problem",
                ),
                (
                    op.status() == optrail_core::Status::Succeeded && view.progress != Some(100.0),
                    "progress",
                ),
            ];
            if let Some((_, what)) = problems.iter().find(|(wrong, _)| *wrong) {
                return Err(self.fail(&format!(
                    "operation {id}: wrong {what}: status {:?} (server {:?}), finished {}, epoch {:?} (server {}), recovery {:?}, remembered {:?}, problem {:?}, progress {:?}",
                    view.status,
                    op.status(),
                    view.finished,
                    view.epoch,
                    op.epoch(),
                    view.recovery,
                    view.tracked.status,
                    view.problem,
                    view.progress
                )));
            }
        }
        Ok(())
    }

    pub(super) fn fail(&self, what: &str) -> String {
        let mut text = format!("{what} (at virtual t={} ms)", self.now - T0);
        text.push_str(&format!(
            "\n  connection {:?}",
            self.client.session.connection()
        ));
        for view in self.client.session.operations() {
            let server = self.server.find(&view.tracked.id).map(|op| {
                let op = &self.server.ops[op];
                (op.epoch(), op.head(), op.status())
            });
            text.push_str(&format!(
                "\n  {}: {} events, contiguous {}, head {}, epoch {:?}, status {:?}, finished {}, recovery {:?}, problem {:?}, remembered {:?}; server (epoch, head, status) {server:?}",
                view.tracked.id,
                view.log.len(),
                view.log.contiguous(),
                view.head,
                view.epoch,
                view.status,
                view.finished,
                view.recovery,
                view.problem,
                view.tracked.status,
            ));
        }
        text
    }
}
