//! One WebSocket session: open, subscribe (resuming from the state's `seq`
//! and `epoch` when there is one), then a single `select!` over incoming
//! frames, the ping tick, the silence deadline, the reconcile tick and its
//! REST answer, and the stop signal.

use std::time::Duration;

use common::protocol::delta::DeltaMessage;
use common::protocol::{ClientMessage, ErrorCode, PingId, ServerMessage};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::close::Ended;
use crate::driver::{stopped, AbortOnDrop, Driver};
use crate::metrics::add;
use crate::rest::{RestError, RestPortfolio};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What one incoming message means for the session.
enum Flow {
    Continue,
    /// The gateway answered `subscribe`: the session is live.
    Subscribed,
    /// The gateway could not serve the subscription; reconnect and resume.
    Retry(String),
}

impl Driver {
    /// Runs one session to its end; also says whether it had become live.
    pub(crate) async fn session(&mut self) -> (Ended, bool) {
        let shared = self.shared.clone();
        let config = &shared.config;
        add(&shared.counters.connect_attempts, 1);
        let mut request = match config.ws_url().into_client_request() {
            Ok(request) => request,
            Err(error) => return (Ended::Failed(error.to_string()), false),
        };
        for (name, value) in &shared.headers {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        let connect = tokio::time::timeout(
            config.connect_timeout,
            tokio_tungstenite::connect_async_with_config(request, None, true),
        );
        let mut socket = match self.until_stopped(connect).await {
            None => return (Ended::Stopped, false),
            Some(Err(_)) => return (Ended::Failed("connect timed out".into()), false),
            Some(Ok(Err(WsError::Http(response)))) if matches!(response.status().as_u16(), 401 | 403) => {
                return (Ended::Refused, false);
            }
            Some(Ok(Err(error))) => return (Ended::Failed(error.to_string()), false),
            Some(Ok(Ok((socket, _)))) => socket,
        };

        // Resume only within a known history: without an epoch the gateway
        // could not tell that history was reset, so ask for a snapshot.
        let resume = {
            let state = shared.state.borrow();
            state.epoch.clone().map(|epoch| (state.seq, epoch))
        };
        let subscribe = ClientMessage::Subscribe {
            channels: config.channels.clone(),
            since: resume.as_ref().map(|(seq, _)| *seq),
            epoch: resume.as_ref().map(|(_, epoch)| epoch.clone()),
            deltas: config.deltas,
        };
        if let Err(error) = send(&mut socket, &subscribe, config.pong_timeout).await {
            return (Ended::Failed(error), false);
        }
        if resume.is_some() {
            add(&shared.counters.resumes, 1);
        }

        let started = Instant::now();
        let handshake = tokio::time::sleep_until(started + config.connect_timeout);
        tokio::pin!(handshake);
        let mut ping = tokio::time::interval_at(started + config.ping_interval, config.ping_interval);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut reconcile = tokio::time::interval_at(started + config.reconcile_interval, config.reconcile_interval);
        reconcile.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // Re-armed lazily: a frame only records the time, and the deadline
        // moves when it fires early, so the receive path sets no timer.
        let mut last_heard = started;
        let silence = tokio::time::sleep_until(started + config.pong_timeout);
        tokio::pin!(silence);
        let mut check: Option<AbortOnDrop<Result<RestPortfolio, RestError>>> = None;
        let mut ping_id: u64 = 0;
        let mut live = false;

        let ended = loop {
            tokio::select! {
                frame = socket.next() => {
                    last_heard = Instant::now();
                    match frame {
                        Some(Ok(Message::Text(text))) => match self.on_text(text.as_str()) {
                            Flow::Continue => {}
                            Flow::Subscribed => {
                                if !live {
                                    live = true;
                                    self.went_live();
                                }
                            }
                            Flow::Retry(reason) => break Ended::Failed(reason),
                        },
                        Some(Ok(Message::Close(frame))) => {
                            break Ended::Closed {
                                code: frame.as_ref().map(|f| u16::from(f.code)),
                                reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                            };
                        }
                        // Pings are answered by tungstenite; binary frames carry nothing.
                        Some(Ok(_)) => {}
                        Some(Err(error)) => break Ended::Failed(error.to_string()),
                        None => break Ended::Failed("the socket ended without a close frame".into()),
                    }
                }
                _ = ping.tick() => {
                    ping_id += 1;
                    let message = ClientMessage::Ping { id: Some(PingId::Number(ping_id.into())) };
                    if let Err(error) = send(&mut socket, &message, config.pong_timeout).await {
                        break Ended::Failed(error);
                    }
                    add(&shared.counters.pings, 1);
                }
                () = &mut silence => {
                    let deadline = last_heard + config.pong_timeout;
                    if Instant::now() >= deadline {
                        add(&shared.counters.dead_links, 1);
                        tracing::info!(silent_for = ?last_heard.elapsed(), "No message or pong in time; reconnecting.");
                        break Ended::DeadLink;
                    }
                    silence.as_mut().reset(deadline);
                }
                () = &mut handshake, if !live => break Ended::Failed("no answer to subscribe in time".into()),
                _ = reconcile.tick(), if live && check.is_none() => {
                    let rest = shared.rest.clone();
                    check = Some(AbortOnDrop(tokio::spawn(async move { rest.portfolio().await })));
                }
                joined = join(&mut check), if check.is_some() => {
                    check = None;
                    match joined {
                        Ok(Ok(rest)) => {
                            add(&shared.counters.reconciles, 1);
                            let merge = shared.merge_rest(rest);
                            tracing::debug!(adopted = merge.adopted, differences = merge.differences, "Reconciled.");
                        }
                        Ok(Err(RestError::Unauthorized)) => break Ended::Refused,
                        Ok(Err(error)) => {
                            add(&shared.counters.rest_failures, 1);
                            tracing::debug!(%error, "Reconcile request failed.");
                        }
                        Err(_) => {}
                    }
                }
                () = stopped(&mut self.stop) => {
                    let frame = CloseFrame { code: CloseCode::Normal, reason: "Client closing".into() };
                    let _ = tokio::time::timeout(config.pong_timeout, socket.close(Some(frame))).await;
                    break Ended::Stopped;
                }
            }
        };
        (ended, live)
    }

    /// Decodes one text frame (the only decode on the receive path) and
    /// merges it into the state.
    fn on_text(&self, text: &str) -> Flow {
        let shared = &self.shared;
        add(&shared.counters.messages, 1);
        add(&shared.counters.bytes_received, text.len() as u64);
        let message = if shared.config.deltas && DeltaMessage::is_delta(text) {
            // Merged over the state into the full message it stands for.
            let delta: Result<DeltaMessage, _> = serde_json::from_str(text);
            match delta.map(|delta| shared.state.borrow().resolve(delta)) {
                Ok(Ok(message)) => message,
                Ok(Err(missing)) => {
                    add(&shared.counters.decode_errors, 1);
                    tracing::warn!(%missing, "Delta without a base; resuming.");
                    return Flow::Retry(missing.to_string());
                }
                Err(error) => {
                    add(&shared.counters.decode_errors, 1);
                    tracing::warn!(%error, "Undecodable delta skipped.");
                    return Flow::Continue;
                }
            }
        } else {
            match serde_json::from_str(text) {
                Ok(message) => message,
                Err(error) => {
                    add(&shared.counters.decode_errors, 1);
                    tracing::warn!(%error, "Undecodable message skipped.");
                    return Flow::Continue;
                }
            }
        };
        if let Some(observer) = &shared.config.observer {
            (observer.0)(&message);
        }
        let flow = match &message {
            ServerMessage::Snapshot { .. } => {
                add(&shared.counters.snapshots, 1);
                Flow::Continue
            }
            ServerMessage::Batch(_) => {
                add(&shared.counters.batches, 1);
                Flow::Continue
            }
            ServerMessage::PositionUpdate(_)
            | ServerMessage::OrderUpdate(_)
            | ServerMessage::AccountUpdate(_)
            | ServerMessage::TradeExecuted(_) => {
                add(&shared.counters.events, 1);
                Flow::Continue
            }
            ServerMessage::Subscribed { .. } => Flow::Subscribed,
            ServerMessage::Pong { .. } => {
                add(&shared.counters.pongs, 1);
                return Flow::Continue;
            }
            ServerMessage::Error { code: ErrorCode::Internal, message } => {
                tracing::warn!(%message, "The gateway could not serve the subscription; reconnecting.");
                return Flow::Retry(format!("gateway error: {message}"));
            }
            ServerMessage::Error { code, message } => {
                tracing::warn!(code = code.as_str(), %message, "The gateway refused a message.");
                return Flow::Continue;
            }
        };
        let max_trades = shared.config.max_trades;
        shared.state.send_if_modified(|state| state.apply(message, max_trades));
        flow
    }
}

/// Waits for the reconcile request, if one is in flight.
async fn join<T>(check: &mut Option<AbortOnDrop<T>>) -> Result<T, tokio::task::JoinError> {
    match check {
        Some(task) => (&mut task.0).await,
        None => std::future::pending().await,
    }
}

/// Sends one client message, giving up after `limit` (a peer that stopped
/// reading must not hang the session).
async fn send(socket: &mut Socket, message: &ClientMessage, limit: Duration) -> Result<(), String> {
    let json = serde_json::to_string(message).map_err(|e| e.to_string())?;
    match tokio::time::timeout(limit, socket.send(Message::text(json))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("send timed out".into()),
    }
}
