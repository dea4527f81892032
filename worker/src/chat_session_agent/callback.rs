//! The agent's callback into the session DO: its lines stored under the ingest rule, and the mark it asks for.

use vf_protocol::api::{CallbackReceipt, StreamMark};
use vf_protocol::ingest::Connection;
use vf_protocol::token::{self, ExecutionClaims};
use vf_protocol::Event;
use worker::{Request, Response};

use super::{Agent, AFTER_CALLBACK_LOSS_MS};
use crate::body_reader::{at_once, BodyReader};
use crate::config;
use crate::error::{ApiError, ApiResult};
use crate::event_log::Execution;
use crate::http;

impl Agent {
    /// `POST /internal/stream`: the agent's callback. The Worker verified the token before waking this DO; it is
    /// checked again here, and bound to the running execution, so a token outlives its execution by nothing.
    /// Whatever happens, the body is read to its end before the answer (see [`BodyReader::drain`]).
    pub(super) async fn handle_callback(&self, req: Request) -> ApiResult<Response> {
        let checked = self.callback_execution(&req);
        let Ok(mut body) = BodyReader::new(&req) else {
            // No body at all (an empty POST): nothing to store, nothing to drain.
            return checked.and(Err(ApiError::BadRequest("the callback has no body".into())));
        };
        let answer = match checked {
            Ok(run) => self.ingest(run, &mut body).await,
            Err(refused) => Err(refused),
        };
        match body.drain().await {
            Ok(0) => {}
            Ok(dropped) => worker::console_log!(
                "callback: dropped {dropped} bytes after the answer was decided"
            ),
            Err(e) => worker::console_warn!("callback: the body broke while it was drained: {e}"),
        }
        answer
    }

    /// Stores one callback connection's lines under the ingest rule, as they arrive.
    async fn ingest(&self, run: Execution, body: &mut BodyReader) -> ApiResult<Response> {
        let execution_id = run.id.clone();
        self.log.mark_callback(&execution_id, config::now_ms())?;
        let mut conn = {
            let mut live = self.live_for(&run);
            live.producer.callback_open = true;
            live.producer.last_activity_ms = config::now_ms();
            live.ingest.connect()
        };
        let mut batch = Vec::new();
        let mut clean_end = true;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    // The connection broke (the agent gave up on it, or the network did): a cut-off last line
                    // is not a line. The agent resends what the mark does not cover on its next connection.
                    worker::console_warn!(
                        "callback: the body broke after {} lines: {e}",
                        conn.stored
                    );
                    clean_end = false;
                    break;
                }
            };
            self.store_chunk(&execution_id, &mut conn, Some(&chunk), &mut batch)?;
            if body.backlogged() {
                // More is waiting: let this batch's commit and its bytes to the clients go out before the
                // next (larger) batch takes the thread.
                at_once().await;
            }
        }
        if clean_end {
            self.store_chunk(&execution_id, &mut conn, None, &mut batch)?;
        }
        if conn.not_events > 0 {
            worker::console_warn!(
                "callback: skipped {} lines that are not events",
                conn.not_events
            );
        }
        let (still_running, last_aseq) = {
            let mut live = self.live.borrow_mut();
            match live.as_mut().filter(|l| l.execution_id == execution_id) {
                Some(l) => {
                    if l.ingest.is_current(&conn) {
                        l.producer.callback_open = false;
                        l.producer.last_activity_ms = config::now_ms();
                    }
                    (l.ingest.is_current(&conn), l.ingest.last_aseq())
                }
                None => (false, self.log.last_aseq(&execution_id)?),
            }
        };
        if still_running {
            // The body ended without a terminal event: the agent died, or its connection broke and it will
            // reconnect and resend. The watchdog tells which, soon: at once if the process is gone, else after
            // the watchdog window without a new callback.
            self.state
                .storage()
                .set_alarm(AFTER_CALLBACK_LOSS_MS)
                .await?;
        }
        let receipt = CallbackReceipt {
            stored: conn.stored,
            terminal: !self.is_live(&execution_id),
            last_aseq,
        };
        match conn.refused() {
            Some(gap) => {
                worker::console_warn!(
                    "callback: refused a connection that skipped from aseq {} to {}",
                    gap.expected,
                    gap.got
                );
                Ok(http::json(409, &receipt))
            }
            None => Ok(http::json(200, &receipt)),
        }
    }

    /// Frames one chunk of a connection (None: its clean end) under the ingest rule and stores what it yields,
    /// with no await in between, so the shared mark and the log always agree.
    fn store_chunk(
        &self,
        execution_id: &str,
        conn: &mut Connection,
        chunk: Option<&[u8]>,
        batch: &mut Vec<Event>,
    ) -> ApiResult<()> {
        let last_aseq = {
            let mut live = self.live.borrow_mut();
            // The execution is over (its terminal event, a cancel, the watchdog): the rest is dropped.
            let Some(l) = live.as_mut().filter(|l| l.execution_id == execution_id) else {
                return Ok(());
            };
            if l.ingest.is_current(conn) {
                l.producer.last_activity_ms = config::now_ms();
            }
            match chunk {
                Some(chunk) => l.ingest.push(conn, chunk, batch),
                None => l.ingest.finish(conn, batch),
            }
            l.ingest.last_aseq()
        };
        if batch.is_empty() {
            return Ok(());
        }
        let stored = self.store_batch(execution_id, batch, last_aseq);
        batch.clear();
        if stored.is_err() {
            // What was stored is uncertain: the next connection rebuilds the mark from the log.
            self.live.borrow_mut().take();
        }
        stored
    }

    /// Stores and publishes one batch of agent events with the mark they reach; ends the execution at a
    /// terminal event (the ingest rule lets one through, always last).
    fn store_batch(
        &self,
        execution_id: &str,
        batch: &mut Vec<Event>,
        last_aseq: u64,
    ) -> ApiResult<()> {
        let terminal = match batch.last() {
            Some(last) if last.is_terminal() => batch.pop(),
            _ => None,
        };
        self.publish(execution_id, batch)?;
        self.note_confirmations(execution_id, batch)?;
        self.log.set_last_aseq(execution_id, last_aseq)?;
        if let Some(terminal) = terminal {
            self.finish(execution_id, terminal)?;
        }
        Ok(())
    }

    /// `GET /internal/stream`: the execution's mark, for the agent (see [`StreamMark`]).
    pub(super) fn handle_mark(&self, req: &Request) -> ApiResult<Response> {
        let run = self.callback_execution(req)?;
        let live = self.live_for(&run);
        let mark = StreamMark {
            last_aseq: live.ingest.last_aseq(),
            idle_ms: config::now_ms().saturating_sub(live.producer.last_activity_ms),
        };
        Ok(http::json(200, &mark))
    }

    /// The running execution a callback's token names, if the token is valid and names this session and it.
    pub(super) fn callback_execution(&self, req: &Request) -> ApiResult<Execution> {
        let bearer = http::bearer(req).ok_or(ApiError::Unauthorized)?;
        let secret = config::secret(&self.env, "JWT_SECRET")?;
        let claims: ExecutionClaims =
            token::verify(&bearer, secret.as_bytes(), config::now_secs())?;
        let session_id = self.log.meta("sessionId")?;
        self.log
            .running()?
            .filter(|r| r.id == claims.execution_id)
            .filter(|_| session_id.as_deref() == Some(claims.session_id.as_str()))
            .ok_or(ApiError::NotFound)
    }
}
