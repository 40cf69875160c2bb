//! Faults: what goes wrong, how often, while the storm lasts.

use super::*;

impl World {
    pub(super) fn chaos(&mut self) {
        let roll = self.rng.below_or_eq(99);
        match roll {
            0..=14 => {
                if let Some(&socket) = self.pick(&self.open_pipes()) {
                    self.drop_socket(socket);
                }
            }
            15..=22 => self.reload(),
            23..=27 if self.server.up => self.restart_server(),
            28..=35 => {
                let live: Vec<usize> = (0..self.server.ops.len())
                    .filter(|&i| {
                        !self.server.ops[i].is_terminal() && self.server.ops[i].rebuilds < 2
                    })
                    .collect();
                if let Some(&op) = self.pick(&live)
                    && self.server.rebuild(op, &mut self.rng)
                {
                    self.stats.rebuilds += 1;
                }
            }
            36..=43 => {
                self.client.offline = !self.client.offline;
                if self.client.offline {
                    self.stats.offline_periods += 1;
                    self.input(Input::Offline);
                    for socket in self.open_pipes() {
                        if self.rng.chance(0.7) {
                            let incarnation = self.client.incarnation;
                            self.cut(incarnation, socket);
                            let delay = self.between(1, 10_000);
                            self.control(socket, delay, Input::SocketClosed(socket));
                        } else {
                            self.drop_socket(socket);
                        }
                    }
                } else {
                    self.input(Input::Online);
                }
            }
            44..=51 => {
                self.client.hidden = !self.client.hidden;
                if self.client.hidden {
                    self.stats.hidden_periods += 1;
                    self.input(Input::Hidden);
                } else {
                    self.input(Input::Visible);
                }
            }
            52..=61 if self.expected.len() < 6 => self.track_new(),
            62..=67 => {
                let ids: Vec<OperationId> = self.expected.iter().cloned().collect();
                if let Some(id) = self.pick(&ids).cloned() {
                    self.input(Input::Cancel(id));
                }
            }
            68..=71 => {
                // Forget an operation; often track it again later (same id,
                // a fresh log), as a person or another tab might.
                let ids: Vec<OperationId> = self.expected.iter().cloned().collect();
                if let Some(id) = self.pick(&ids).cloned() {
                    self.stats.forgets += 1;
                    self.expected.remove(&id);
                    self.unknown.remove(&id);
                    self.forgotten.push(id.clone());
                    self.input(Input::Forget(id));
                }
            }
            72..=77 => {
                if let Some(id) = self.forgotten.pop() {
                    self.expected.insert(id.clone());
                    if self.server.find(&id).is_none() {
                        self.unknown.insert(id.clone());
                    }
                    self.input(Input::Track {
                        operation: TrackedOperation::by_id(id),
                        epoch: None,
                    });
                }
            }
            78..=79 if self.unknown.is_empty() => {
                self.stats.unknown_ops += 1;
                let id = OperationId(format!("{:032x}", self.rng.next_u64()));
                self.expected.insert(id.clone());
                self.unknown.insert(id.clone());
                self.input(Input::Track {
                    operation: TrackedOperation::by_id(id),
                    epoch: None,
                });
            }
            80..=83 => {
                if let Some(&socket) = self.pick(&self.open_pipes()) {
                    self.stats.malformed_frames += 1;
                    let garbage = [
                        "{",
                        "null",
                        "[1,2]",
                        r#"{"type":"event","operationId":"x"}"#,
                        r#"{"type":"subscribed","operationId":7}"#,
                        "\u{0}\u{1}",
                    ];
                    let text = garbage[self.rng.below_or_eq(5) as usize].to_owned();
                    let latency = self.latency();
                    self.send_to_client(socket, latency, text);
                }
            }
            _ => {
                // A moment of calm.
            }
        }
    }

    pub(super) fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            Some(&items[self.rng.below_or_eq(items.len() as u64 - 1) as usize])
        }
    }
}
