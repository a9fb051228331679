//! The fan-out of one request's partitions to their owning shards, written once: Produce, Fetch
//! and ListOffsets each put every partition in a slot (request order), either answered at once
//! (unknown topic, refused) or sent to its owner; the owners get **one job per shard** holding
//! their items in request order; their replies are put back in the slots, so the answer lists
//! the partitions as the request did. A shard that cannot be reached (stopped, or gone while the
//! job ran) answers each of its items with the job's error value.
//!
//! Two stages, as the handlers have: [`FanOut::submit`] sends the jobs (awaiting only channel
//! space; call it in the dispatch stage when the owners' synchronous part must run in request
//! order, as Produce's appends must), [`Pending::collect`] awaits the replies.
//!
//! Owns: grouping by shard, the slot bookkeeping, mapping a shard's failure to its items.
//! Must not: know what the per-partition work is (the [`ShardJob`] does), or reorder one shard's
//! items.

use std::rc::Rc;

use futures::future::LocalBoxFuture;
use futures::FutureExt;

use crate::shard::{Mesh, ShardError};

/// Why a slot sent to a shard got no reply.
#[derive(Debug, thiserror::Error)]
pub enum FanOutError {
    #[error(transparent)]
    Shard(#[from] ShardError),
    /// The job broke its contract (one reply per item).
    #[error("shard {shard} answered {got} of {expected} partitions")]
    MissingReplies {
        shard: usize,
        expected: usize,
        got: usize,
    },
}

/// The per-partition work of one API, run on the owning shards of service `S`.
pub trait ShardJob<S>: Clone + Send + 'static {
    /// One partition's work, sent to its owner.
    type Item: Send + 'static;
    /// One partition's result as it crosses back from another shard.
    type Reply: Send + 'static;
    /// One partition's result at the requesting shard.
    type Out: 'static;

    /// On the owner: one reply per item, in the items' order. What runs before the returned
    /// future's first await runs in submission order (`Mesh::submit`'s contract).
    fn on_owner(
        self,
        owner: &Rc<S>,
        items: Vec<Self::Item>,
    ) -> LocalBoxFuture<'static, Vec<Self::Reply>>;

    /// A reply from another shard, at the requester.
    fn received(reply: Self::Reply) -> Self::Out;

    /// The requester's own items: by default as any owner, but a job may keep shard-local
    /// values here (Fetch answers with the log's own buffers, which cannot cross shards).
    fn on_this_shard(
        self,
        this: &Rc<S>,
        items: Vec<Self::Item>,
    ) -> LocalBoxFuture<'static, Vec<Self::Out>> {
        let replies = self.on_owner(this, items);
        async move { replies.await.into_iter().map(Self::received).collect() }.boxed_local()
    }

    /// The answer of an item whose shard did not reply.
    fn failed(error: &FanOutError) -> Self::Out;
}

/// One request's partitions, in slots in request order, before anything is sent.
pub struct FanOut<S, J: ShardJob<S>> {
    slots: Vec<Option<J::Out>>,
    /// Per shard: (slot, item) in request order.
    per_shard: Vec<Vec<(usize, J::Item)>>,
}

impl<S: 'static, J: ShardJob<S>> FanOut<S, J> {
    pub fn new(shard_count: usize) -> Self {
        FanOut {
            slots: Vec::new(),
            per_shard: (0..shard_count).map(|_| Vec::new()).collect(),
        }
    }

    /// The next slot, answered here and now.
    pub fn answered(&mut self, out: J::Out) {
        self.slots.push(Some(out));
    }

    /// The next slot, answered by `shard`. A shard the mesh does not have answers with
    /// [`ShardJob::failed`].
    pub fn send(&mut self, shard: usize, item: J::Item) {
        let slot = self.slots.len();
        self.slots.push(None);
        if shard >= self.per_shard.len() {
            self.per_shard.resize_with(shard + 1, Vec::new);
        }
        self.per_shard[shard].push((slot, item));
    }

    /// Sends one job per shard that has items (this shard's run in place), in shard order.
    pub async fn submit(self, mesh: &Mesh<S>, this: &Rc<S>, job: J) -> Pending<J::Out> {
        let FanOut {
            mut slots,
            per_shard,
        } = self;
        let mut waits = Vec::new();
        for (shard, work) in per_shard.into_iter().enumerate() {
            if work.is_empty() {
                continue;
            }
            let (indexes, items): (Vec<usize>, Vec<J::Item>) = work.into_iter().unzip();
            let expected = items.len();
            let job = job.clone();
            let replies: LocalBoxFuture<'static, Result<Vec<J::Out>, FanOutError>> =
                if shard == mesh.shard_id() {
                    job.on_this_shard(this, items).map(Ok).boxed_local()
                } else {
                    let sent = mesh
                        .submit(this, shard, move |owner: &Rc<S>| job.on_owner(owner, items))
                        .await;
                    match sent {
                        Ok(reply) => async move {
                            let replies = reply.await?;
                            Ok(replies.into_iter().map(J::received).collect())
                        }
                        .boxed_local(),
                        Err(e) => {
                            let e = FanOutError::from(e);
                            tracing::warn!(shard, "fan-out: {e}");
                            for slot in indexes {
                                slots[slot] = Some(J::failed(&e));
                            }
                            continue;
                        }
                    }
                };
            waits.push(Wait {
                shard,
                indexes,
                expected,
                replies,
            });
        }
        Pending {
            slots,
            waits,
            failed: J::failed,
        }
    }
}

/// One shard's job in flight.
struct Wait<O> {
    shard: usize,
    indexes: Vec<usize>,
    expected: usize,
    replies: LocalBoxFuture<'static, Result<Vec<O>, FanOutError>>,
}

/// Jobs sent; the slots they will fill.
pub struct Pending<O> {
    slots: Vec<Option<O>>,
    waits: Vec<Wait<O>>,
    /// The job's answer for an item whose shard did not reply.
    failed: fn(&FanOutError) -> O,
}

impl<O: 'static> Pending<O> {
    /// Every slot's answer, in request order, once every shard has replied (concurrently).
    pub async fn collect(self) -> Vec<O> {
        let Pending {
            mut slots,
            waits,
            failed,
        } = self;
        let done = futures::future::join_all(waits.into_iter().map(|w| async move {
            let result = w.replies.await;
            (w.shard, w.indexes, w.expected, result)
        }))
        .await;
        for (shard, indexes, expected, result) in done {
            let replies = match result {
                Ok(replies) if replies.len() == expected => replies,
                Ok(replies) => {
                    debug_assert!(
                        false,
                        "shard {shard}: {} replies for {expected}",
                        replies.len()
                    );
                    let e = FanOutError::MissingReplies {
                        shard,
                        expected,
                        got: replies.len(),
                    };
                    tracing::error!("fan-out: {e}");
                    indexes.iter().map(|_| failed(&e)).collect()
                }
                Err(e) => {
                    tracing::warn!(shard, "fan-out: {e}");
                    indexes.iter().map(|_| failed(&e)).collect()
                }
            };
            for (slot, out) in indexes.into_iter().zip(replies) {
                slots[slot] = Some(out);
            }
        }
        // Every slot was answered at once, failed at submit or filled above.
        debug_assert!(slots.iter().all(Option::is_some));
        slots
            .into_iter()
            .map(|slot| {
                slot.unwrap_or_else(|| {
                    failed(&FanOutError::MissingReplies {
                        shard: usize::MAX,
                        expected: 1,
                        got: 0,
                    })
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::{self, Completion, ConnContext, Service, ShardsConfig};
    use bytes::Bytes;
    use std::sync::{mpsc, Arc, Mutex};
    use std::time::Duration;
    use wire::protocol::ProtocolError;

    /// Shards that only run fan-outs.
    struct Toy {
        mesh: Mesh<Toy>,
    }

    impl Service for Toy {
        fn dispatch(
            self: Rc<Self>,
            _frame: Bytes,
            _conn: &Rc<ConnContext>,
        ) -> LocalBoxFuture<'static, Result<Completion, ProtocolError>> {
            async { Err(ProtocolError::Malformed("test shard")) }.boxed_local()
        }
        fn shutdown(self: Rc<Self>) -> LocalBoxFuture<'static, ()> {
            async {}.boxed_local()
        }
    }

    /// Each owner answers (its shard id, the item × 10); items finish in reverse order (a later
    /// item sleeps less), and a shard with a higher id answers sooner, so neither shard order nor
    /// completion order matches the request's.
    #[derive(Clone)]
    struct Tag;

    impl ShardJob<Toy> for Tag {
        type Item = u32;
        type Reply = (usize, u32);
        type Out = Result<(usize, u32), String>;

        fn on_owner(
            self,
            owner: &Rc<Toy>,
            items: Vec<u32>,
        ) -> LocalBoxFuture<'static, Vec<(usize, u32)>> {
            let shard = owner.mesh.shard_id();
            let n = items.len() as u64;
            async move {
                let each = items.into_iter().enumerate().map(|(i, item)| async move {
                    let ms = 5 * (n - i as u64) + 20 * (3 - shard as u64);
                    glommio::timer::sleep(Duration::from_millis(ms)).await;
                    (shard, item * 10)
                });
                futures::future::join_all(each).await
            }
            .boxed_local()
        }

        fn received(reply: (usize, u32)) -> Self::Out {
            Ok(reply)
        }

        fn failed(error: &FanOutError) -> Self::Out {
            Err(error.to_string())
        }
    }

    /// Runs `run` on shard 0 of three shards and returns what it returned.
    fn on_three_shards<T: Send + 'static>(
        run: impl FnOnce(Rc<Toy>) -> LocalBoxFuture<'static, T> + Send + 'static,
    ) -> T {
        let (tx, rx) = mpsc::channel();
        let run = Arc::new(Mutex::new(Some((run, tx))));
        let online = std::thread::available_parallelism().map_or(1, |n| n.get());
        let shards = shard::start(
            ShardsConfig {
                cores: (0..3).map(|i| i % online).collect(),
                io_memory_bytes: 1 << 20,
                kafka_addr: "127.0.0.1:0".parse().unwrap(),
                request_bytes_max: 1 << 20,
                channel_jobs_max: 16,
                connections_max: crate::shard::CONNECTIONS_MAX_DEFAULT,
            },
            move |mesh: Mesh<Toy>| {
                let run = run.clone();
                async move {
                    let me = Rc::new(Toy { mesh });
                    if me.mesh.shard_id() == 0 {
                        let (run, tx) = run.lock().unwrap().take().unwrap();
                        let fut = run(me.clone());
                        glommio::spawn_local(async move {
                            let _ = tx.send(fut.await);
                        })
                        .detach();
                    }
                    Ok(me)
                }
                .boxed_local()
            },
        )
        .expect("three shards");
        let out = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("fan-out done");
        let errors = shards.stop();
        assert!(errors.is_empty(), "{errors:?}");
        out
    }

    #[test]
    fn answers_come_back_in_request_order_from_several_shards_and_a_missing_shard_fails_its_items()
    {
        // (slot, where it goes): shards 2, 0, 1 interleaved, answers given here, and shard 7,
        // which the mesh does not have.
        let out = on_three_shards(|me| {
            async move {
                let mut fan = FanOut::<Toy, Tag>::new(me.mesh.shard_count());
                fan.send(2, 1);
                fan.answered(Ok((99, 0)));
                fan.send(0, 2);
                fan.send(1, 3);
                fan.send(7, 4);
                fan.send(2, 5);
                fan.send(0, 6);
                fan.answered(Err("refused".into()));
                fan.send(1, 7);
                fan.send(2, 8);
                fan.submit(&me.mesh, &me, Tag).await.collect().await
            }
            .boxed_local()
        });
        assert_eq!(
            out,
            vec![
                Ok((2, 10)),
                Ok((99, 0)),
                Ok((0, 20)),
                Ok((1, 30)),
                Err("shard 7 has stopped".into()),
                Ok((2, 50)),
                Ok((0, 60)),
                Err("refused".into()),
                Ok((1, 70)),
                Ok((2, 80)),
            ]
        );
    }

    #[test]
    fn a_request_with_nothing_to_send_is_answered_as_given() {
        let out = on_three_shards(|me| {
            async move {
                let mut fan = FanOut::<Toy, Tag>::new(me.mesh.shard_count());
                fan.answered(Ok((9, 9)));
                fan.submit(&me.mesh, &me, Tag).await.collect().await
            }
            .boxed_local()
        });
        assert_eq!(out, vec![Ok((9, 9))]);
    }
}
