//! The one module of the workspace allowed to use `unsafe` (the workspace denies `unsafe_code`):
//! it wraps exactly the librdkafka admin calls Oxbow needs, because rdkafka 0.39 either has no
//! safe binding for them (IncrementalAlterConfigs, DescribeTopics, DescribeCluster, the ACL and
//! SCRAM calls) or its binding drops Kafka's per-item error message (CreateTopics, DeleteTopics,
//! CreatePartitions, DescribeConfigs), which users must see. Rules kept here: every object
//! librdkafka allocates for us is owned by an RAII guard; each call gets its own result queue and
//! blocks on it with a deadline; every answer is copied into owned Rust values before its event is
//! destroyed. The async layer (`admin.rs`) runs these calls on tokio's blocking pool.
//! May touch: the librdkafka client it owns (and through it the network), one thread that
//! forwards librdkafka's log lines to `tracing`.

#![allow(unsafe_code)]

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    ffi::{CStr, CString, c_char, c_int},
    ptr::{self, NonNull},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use rdkafka::{
    ClientConfig, bindings as rd,
    client::{Client, DefaultClientContext},
    types::RDKafkaType,
};

use super::admin::{
    AclBinding, AclBindingFilter, AclOperation, AclPatternFilter, AclPatternType, AclPermission,
    AclResourceType, ClusterDescription, ConfigEntry, ConfigOp, ConfigSource, KafkaFailure,
    LOCAL_INVALID_ARG, NewTopicSpec, PartitionState, ScramAlteration, ScramCredentialInfo,
    ScramMechanism, TopicDescription, topic_id_string,
};

/// A call that failed as a whole (per-item refusals are [`KafkaFailure`]s in the item results).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// librdkafka refused the client settings.
    #[error("{0}")]
    CreateClient(String),
    /// librdkafka refused to build the request (its message says why).
    #[error("librdkafka refused the request: {0}")]
    BuildRequest(String),
    /// The request failed as a whole: Kafka's error, or librdkafka's (timeout, transport, auth).
    #[error("{0}")]
    Kafka(KafkaFailure),
    /// No answer arrived, not even librdkafka's own timeout, within this long.
    #[error("no answer within {0:?}")]
    AwaitAnswer(Duration),
    /// The answer was not the one asked for.
    #[error("unexpected answer: {0}")]
    ReadAnswer(String),
}

/// Results per item, keyed by what identifies the item.
pub type Items<K, T> = Vec<(K, Result<T, KafkaFailure>)>;

/// Items being answered: `None` until their result is known.
type Slots<K, T> = Vec<(K, Option<Result<T, KafkaFailure>>)>;

/// librdkafka answers with its own timeout error after the request timeout; this much longer we
/// wait for that answer before giving up on it ourselves.
const ANSWER_MARGIN: Duration = Duration::from_secs(5);

/// Kafka's `CLUSTER_AUTHORIZATION_FAILED`.
const CLUSTER_AUTHORIZATION_FAILED: i32 = 31;

/// The kinds of config resource whose configs this client reads and changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigResourceType {
    Topic,
    /// A broker (its id as the name). librdkafka sends such a request to that broker, one
    /// broker resource per request, and refuses the empty name of the cluster-wide default.
    Broker,
}

impl ConfigResourceType {
    fn native(self) -> rd::rd_kafka_ResourceType_t {
        match self {
            ConfigResourceType::Topic => rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
            ConfigResourceType::Broker => rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_BROKER,
        }
    }

    /// How an item of this kind is named in local refusals.
    fn what(self) -> &'static str {
        match self {
            ConfigResourceType::Topic => "topic name",
            ConfigResourceType::Broker => "broker id",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Functions redeclared with `c_int` results
// ---------------------------------------------------------------------------------------------

/// These librdkafka functions return a C enum whose value comes straight from the broker: an
/// error code, a config source, a SCRAM mechanism. A newer broker may send a value this
/// librdkafka has no enumerator for (Kafka 4.1 has error codes up to 133; rdkafka-sys's enum stops
/// at 129 with gaps), and holding such a value in a Rust enum is undefined behaviour. Declared
/// with `c_int` (a C enum is an `int` in the C ABI; same symbols), any value is fine.
mod int_results {
    use std::ffi::{c_char, c_int};

    use rdkafka::bindings as rd;

    unsafe extern "C" {
        pub fn rd_kafka_event_error(rkev: *mut rd::rd_kafka_event_t) -> c_int;
        pub fn rd_kafka_topic_result_error(topicres: *const rd::rd_kafka_topic_result_t) -> c_int;
        pub fn rd_kafka_ConfigResource_error(config: *const rd::rd_kafka_ConfigResource_t)
        -> c_int;
        pub fn rd_kafka_error_code(error: *const rd::rd_kafka_error_t) -> c_int;
        pub fn rd_kafka_err2str(err: c_int) -> *const c_char;
        pub fn rd_kafka_ConfigEntry_source(entry: *const rd::rd_kafka_ConfigEntry_t) -> c_int;
        pub fn rd_kafka_ScramCredentialInfo_mechanism(
            info: *const rd::rd_kafka_ScramCredentialInfo_t,
        ) -> c_int;
    }
}

// ---------------------------------------------------------------------------------------------
// RAII guards and copying helpers
// ---------------------------------------------------------------------------------------------

/// Owns one librdkafka object and frees it with its destructor when dropped.
struct Owned<T> {
    ptr: NonNull<T>,
    destroy: unsafe extern "C" fn(*mut T),
}

impl<T> Owned<T> {
    /// Takes ownership of `ptr`; `None` when librdkafka returned NULL.
    ///
    /// # Safety
    /// `ptr` must be NULL or an object the caller owns, which `destroy` frees.
    unsafe fn new(ptr: *mut T, destroy: unsafe extern "C" fn(*mut T)) -> Option<Self> {
        NonNull::new(ptr).map(|ptr| Owned { ptr, destroy })
    }

    fn ptr(&self) -> *mut T {
        self.ptr.as_ptr()
    }
}

impl<T> Drop for Owned<T> {
    fn drop(&mut self) {
        // SAFETY: `new`'s contract: we own the object and `destroy` is its destructor; `Owned`
        // is neither `Clone` nor `Copy`, so this runs once.
        unsafe { (self.destroy)(self.ptr.as_ptr()) }
    }
}

/// Owns an `rd_kafka_error_t` that a librdkafka function handed to the caller.
fn owned_error(error: *mut rd::rd_kafka_error_t) -> Option<Owned<rd::rd_kafka_error_t>> {
    // SAFETY: functions returning `rd_kafka_error_t *` give ownership to the caller.
    unsafe { Owned::new(error, rd::rd_kafka_error_destroy) }
}

/// Copies a C string; `None` for NULL.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string valid for the duration of the call.
unsafe fn copy_str(p: *const c_char) -> Option<String> {
    if p.is_null() {
        None
    } else {
        // SAFETY: per the contract.
        Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }
}

/// Views a librdkafka result array as a slice (empty for NULL).
///
/// # Safety
/// `arr` is NULL or points to `n` initialised elements that outlive the returned slice.
unsafe fn array<'a, T>(arr: *const T, n: usize) -> &'a [T] {
    if arr.is_null() || n == 0 {
        &[]
    } else {
        // SAFETY: per the contract.
        unsafe { std::slice::from_raw_parts(arr, n) }
    }
}

/// librdkafka's description of an error code, for answers that carry no message.
fn describe_code(code: c_int) -> String {
    // SAFETY: rd_kafka_err2str accepts any value and returns a string that stays valid until the
    // next call on this thread; it is copied at once.
    unsafe { copy_str(int_results::rd_kafka_err2str(code)) }.unwrap_or_default()
}

/// A failure from a code and an optional message from the answer.
fn failure(code: c_int, message: Option<String>) -> KafkaFailure {
    let message = message
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| describe_code(code));
    KafkaFailure::new(code, message)
}

/// Reads a per-item `rd_kafka_error_t` (NULL, or code 0, means success).
///
/// # Safety
/// `error` is NULL or valid for the duration of the call.
unsafe fn item_error(error: *const rd::rd_kafka_error_t) -> Result<(), KafkaFailure> {
    if error.is_null() {
        return Ok(());
    }
    // SAFETY: per the contract.
    let code = unsafe { int_results::rd_kafka_error_code(error) };
    if code == 0 {
        return Ok(());
    }
    // SAFETY: per the contract; rd_kafka_error_string never returns NULL for a valid error.
    Err(failure(code, unsafe {
        copy_str(rd::rd_kafka_error_string(error))
    }))
}

/// A string for librdkafka, or the item's refusal when it holds a NUL byte.
fn c_string(what: &str, value: &str) -> Result<CString, KafkaFailure> {
    CString::new(value).map_err(|_| {
        KafkaFailure::new(
            LOCAL_INVALID_ARG,
            format!("{what} {value:?} contains a NUL byte"),
        )
    })
}

/// Room for librdkafka's error strings.
struct ErrBuf([c_char; 512]);

impl ErrBuf {
    fn new() -> Self {
        ErrBuf([0; 512])
    }
    fn ptr(&mut self) -> *mut c_char {
        self.0.as_mut_ptr()
    }
    fn size(&self) -> usize {
        self.0.len()
    }
    fn message(&self) -> String {
        // SAFETY: the buffer starts zeroed and librdkafka writes NUL-terminated strings that fit.
        unsafe { copy_str(self.0.as_ptr()) }.unwrap_or_default()
    }
}

fn millis(d: Duration) -> c_int {
    c_int::try_from(d.as_millis()).unwrap_or(c_int::MAX)
}

// ---------------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------------

/// librdkafka's main queue, shared with the log thread. librdkafka queues are thread-safe.
struct MainQueue(Owned<rd::rd_kafka_queue_t>);

// SAFETY: librdkafka documents its queue operations as thread-safe; the handle is only polled,
// yielded and (once, on drop) destroyed.
unsafe impl Send for MainQueue {}
// SAFETY: as above.
unsafe impl Sync for MainQueue {}

/// Forwards the log lines and client errors librdkafka puts on the main queue to `tracing`.
/// rdkafka routes librdkafka's logs to that queue and only its producers and consumers poll it;
/// without this thread they would pile up unseen (a failing SCRAM login is only logged there).
/// It also remembers the latest client error, because an admin request that cannot reach the
/// controller only says "timed out", and the reason (a refused login, a bad certificate) is in
/// the client errors.
struct LogForwarder {
    queue: Arc<MainQueue>,
    stop: Arc<AtomicBool>,
    recent_errors: Arc<Mutex<VecDeque<ClientError>>>,
    thread: Option<thread::JoinHandle<()>>,
}

/// A client-level error: librdkafka's error event, or a log line at error level.
#[derive(Clone, Debug)]
struct ClientError {
    at: Instant,
    /// The error code, for error events.
    code: Option<c_int>,
    message: String,
}

impl LogForwarder {
    fn start(rk: *mut rd::rd_kafka_t) -> Result<Self, CallError> {
        // SAFETY: `rk` is a live client; the returned queue reference is ours to destroy.
        let queue =
            unsafe { Owned::new(rd::rd_kafka_queue_get_main(rk), rd::rd_kafka_queue_destroy) }
                .ok_or_else(|| CallError::CreateClient("librdkafka has no main queue".into()))?;
        let queue = Arc::new(MainQueue(queue));
        let stop = Arc::new(AtomicBool::new(false));
        let recent_errors = Arc::new(Mutex::new(VecDeque::new()));
        let (q, s, recent) = (queue.clone(), stop.clone(), recent_errors.clone());
        let thread = thread::Builder::new()
            .name("kafka-admin-log".into())
            .spawn(move || {
                while !s.load(Ordering::Acquire) {
                    // SAFETY: the queue is alive (we hold an Arc); a returned event is ours.
                    let event = unsafe {
                        Owned::new(
                            rd::rd_kafka_queue_poll(q.0.ptr(), 1000),
                            rd::rd_kafka_event_destroy,
                        )
                    };
                    if let Some(error) = event.and_then(|e| forward_event(&e)) {
                        let mut recent = recent.lock().unwrap_or_else(|p| p.into_inner());
                        if recent.len() == RECENT_ERRORS {
                            recent.pop_front();
                        }
                        recent.push_back(error);
                    }
                }
            })
            .map_err(|e| CallError::CreateClient(format!("starting the log thread: {e}")))?;
        Ok(LogForwarder {
            queue,
            stop,
            recent_errors,
            thread: Some(thread),
        })
    }

    /// The client errors seen since `since`, oldest first.
    fn errors_since(&self, since: Instant) -> Vec<ClientError> {
        let recent = self.recent_errors.lock().unwrap_or_else(|p| p.into_inner());
        recent.iter().filter(|e| e.at >= since).cloned().collect()
    }
}

impl Drop for LogForwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // SAFETY: the queue is alive; yielding wakes the thread's poll at once.
        unsafe { rd::rd_kafka_queue_yield(self.queue.0.ptr()) };
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Logs one main-queue event; returns it when it is a client error.
fn forward_event(event: &Owned<rd::rd_kafka_event_t>) -> Option<ClientError> {
    // SAFETY: `event` is a live event; strings are copied before it is destroyed.
    unsafe {
        match rd::rd_kafka_event_type(event.ptr()) {
            rd::RD_KAFKA_EVENT_LOG => {
                let (mut fac, mut msg, mut level) = (ptr::null(), ptr::null(), 0);
                if rd::rd_kafka_event_log(event.ptr(), &mut fac, &mut msg, &mut level) == 0 {
                    let fac = copy_str(fac).unwrap_or_default();
                    let msg = copy_str(msg).unwrap_or_default();
                    // syslog levels: 0-3 error, 4 warning, 5-6 notice/info, 7 debug.
                    match level {
                        0..=3 => {
                            tracing::error!(target: "librdkafka", facility = %fac, "{msg}");
                            return Some(ClientError {
                                at: Instant::now(),
                                code: None,
                                message: msg,
                            });
                        }
                        4 => tracing::warn!(target: "librdkafka", facility = %fac, "{msg}"),
                        5 | 6 => tracing::info!(target: "librdkafka", facility = %fac, "{msg}"),
                        _ => tracing::debug!(target: "librdkafka", facility = %fac, "{msg}"),
                    }
                }
                None
            }
            rd::RD_KAFKA_EVENT_ERROR => {
                let code = int_results::rd_kafka_event_error(event.ptr());
                let f = failure(code, copy_str(rd::rd_kafka_event_error_string(event.ptr())));
                tracing::warn!(target: "librdkafka", reason = f.reason(), "{f}");
                Some(ClientError {
                    at: Instant::now(),
                    code: Some(code),
                    message: f.message,
                })
            }
            _ => None,
        }
    }
}

/// How many client errors the log thread keeps for explaining timeouts.
const RECENT_ERRORS: usize = 16;
/// librdkafka's `_TIMED_OUT`.
const LOCAL_TIMED_OUT: c_int = -185;
/// librdkafka's `_ALL_BROKERS_DOWN`, a consequence of the other errors, never their cause.
const LOCAL_ALL_BROKERS_DOWN: c_int = -187;

/// A request that timed out names the client error that most likely caused it (the latest
/// one with a code other than "all brokers down", for example `_AUTHENTICATION` or `_SSL`;
/// else the latest one): the failure takes that code and keeps both messages.
fn explain_timeout(timed_out: KafkaFailure, meanwhile: &[ClientError]) -> KafkaFailure {
    if timed_out.code != LOCAL_TIMED_OUT {
        return timed_out;
    }
    let cause = meanwhile
        .iter()
        .rev()
        .find(|e| e.code.is_some_and(|c| c != LOCAL_ALL_BROKERS_DOWN))
        .or(meanwhile.last());
    match cause {
        Some(cause) => KafkaFailure::new(
            cause.code.unwrap_or(timed_out.code),
            format!(
                "{} (client error meanwhile: {})",
                timed_out.message, cause.message
            ),
        ),
        None => timed_out,
    }
}

/// The librdkafka client of one [`super::admin::KafkaAdmin`]: `Send + Sync`, blocking calls.
pub struct AdminHandle {
    // Field order matters: the log thread holds a reference to the main queue, which must be
    // released (forwarder dropped first) before the client is destroyed.
    logs: LogForwarder,
    client: Client<DefaultClientContext>,
    /// When Kafka last answered without a request-level error: client errors before that are
    /// history, those after it may explain a timeout (librdkafka reports a repeated error once).
    last_answer: Mutex<Instant>,
}

/// Which admin options a call takes.
#[derive(Clone, Copy)]
struct Call {
    op: rd::rd_kafka_admin_op_t,
    /// The event type of the answer.
    answer: c_int,
    /// CreateTopics, DeleteTopics and CreatePartitions wait on the controller this long.
    operation_timeout: bool,
    /// Ask for the operations this client's principal may perform (DescribeCluster).
    authorized_operations: bool,
}

impl AdminHandle {
    /// Creates the librdkafka client (it connects on the first request).
    pub fn new(config: &ClientConfig) -> Result<Self, CallError> {
        let native = config
            .create_native_config()
            .map_err(|e| CallError::CreateClient(e.to_string()))?;
        // Client errors as events with their codes (otherwise librdkafka only logs them), so a
        // timed-out request can say it was, say, an authentication failure.
        // SAFETY: a live configuration object not yet handed to rd_kafka_new.
        unsafe { rd::rd_kafka_conf_set_events(native.ptr(), rd::RD_KAFKA_EVENT_ERROR) };
        // A producer handle, as rdkafka's own AdminClient uses: the lighter of the two kinds.
        let client = Client::new(
            config,
            native,
            RDKafkaType::RD_KAFKA_PRODUCER,
            DefaultClientContext,
        )
        .map_err(|e| CallError::CreateClient(e.to_string()))?;
        let logs = LogForwarder::start(client.native_ptr())?;
        Ok(AdminHandle {
            logs,
            client,
            last_answer: Mutex::new(Instant::now()),
        })
    }

    fn last_answer(&self) -> std::sync::MutexGuard<'_, Instant> {
        self.last_answer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends one admin request on a queue of its own and waits for its answer.
    fn call(
        &self,
        call: Call,
        timeout: Duration,
        submit: impl FnOnce(
            *mut rd::rd_kafka_t,
            *const rd::rd_kafka_AdminOptions_t,
            *mut rd::rd_kafka_queue_t,
        ),
    ) -> Result<Owned<rd::rd_kafka_event_t>, CallError> {
        let rk = self.client.native_ptr();
        // SAFETY: `rk` is live for `&self`; the options object is ours to destroy.
        let options = unsafe {
            Owned::new(
                rd::rd_kafka_AdminOptions_new(rk, call.op),
                rd::rd_kafka_AdminOptions_destroy,
            )
        }
        .ok_or_else(|| CallError::BuildRequest("unknown admin operation".into()))?;
        let mut err = ErrBuf::new();
        // SAFETY: live options, a writable buffer of the given size.
        let set = unsafe {
            rd::rd_kafka_AdminOptions_set_request_timeout(
                options.ptr(),
                millis(timeout),
                err.ptr(),
                err.size(),
            )
        };
        if set != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            return Err(CallError::BuildRequest(err.message()));
        }
        if call.operation_timeout {
            // SAFETY: as above.
            let set = unsafe {
                rd::rd_kafka_AdminOptions_set_operation_timeout(
                    options.ptr(),
                    millis(timeout),
                    err.ptr(),
                    err.size(),
                )
            };
            if set != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                return Err(CallError::BuildRequest(err.message()));
            }
        }
        if call.authorized_operations {
            // SAFETY: live options; a returned error is ours to destroy.
            let error = owned_error(unsafe {
                rd::rd_kafka_AdminOptions_set_include_authorized_operations(options.ptr(), 1)
            });
            if let Some(error) = error {
                // SAFETY: live error, read before it is destroyed.
                let refused = unsafe { item_error(error.ptr()) };
                return Err(CallError::BuildRequest(
                    refused.err().map(|f| f.message).unwrap_or_default(),
                ));
            }
        }
        // SAFETY: a new queue on the live client, ours to destroy. If we stop waiting, destroying
        // it disables it, and librdkafka frees a late answer instead of enqueueing it.
        let queue = unsafe { Owned::new(rd::rd_kafka_queue_new(rk), rd::rd_kafka_queue_destroy) }
            .ok_or_else(|| CallError::BuildRequest("no result queue".into()))?;
        submit(rk, options.ptr(), queue.ptr());
        let wait = timeout.saturating_add(ANSWER_MARGIN);
        // SAFETY: live queue; the event returned is ours.
        let event = unsafe {
            Owned::new(
                rd::rd_kafka_queue_poll(queue.ptr(), millis(wait)),
                rd::rd_kafka_event_destroy,
            )
        }
        .ok_or(CallError::AwaitAnswer(wait))?;
        // SAFETY: live event; the string is copied before the event is destroyed.
        unsafe {
            let code = int_results::rd_kafka_event_error(event.ptr());
            if code != 0 {
                let message = copy_str(rd::rd_kafka_event_error_string(event.ptr()));
                let failure = failure(code, message);
                return Err(CallError::Kafka(explain_timeout(
                    failure,
                    &self.logs.errors_since(*self.last_answer()),
                )));
            }
            let kind = rd::rd_kafka_event_type(event.ptr());
            if kind != call.answer {
                let name = copy_str(rd::rd_kafka_event_name(event.ptr())).unwrap_or_default();
                return Err(CallError::ReadAnswer(format!(
                    "event {name} ({kind}), expected type {}",
                    call.answer
                )));
            }
        }
        *self.last_answer() = Instant::now();
        Ok(event)
    }

    pub fn describe_cluster(&self, timeout: Duration) -> Result<ClusterDescription, CallError> {
        self.describe_cluster_with(timeout, false).map(|(d, _)| d)
    }

    /// Whether this client's principal may Describe the cluster; `None` when the broker does
    /// not say (no authorizer).
    fn may_describe_cluster(&self, timeout: Duration) -> Result<Option<bool>, CallError> {
        let (_, ops) = self.describe_cluster_with(timeout, true)?;
        let describe = rd::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_DESCRIBE as c_int;
        Ok(ops.map(|ops| ops.contains(&describe)))
    }

    /// DescribeCluster, optionally with the operations the principal may perform on it.
    fn describe_cluster_with(
        &self,
        timeout: Duration,
        authorized_operations: bool,
    ) -> Result<(ClusterDescription, Option<Vec<c_int>>), CallError> {
        let call = Call {
            op: rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECLUSTER,
            answer: rd::RD_KAFKA_EVENT_DESCRIBECLUSTER_RESULT,
            operation_timeout: false,
            authorized_operations,
        };
        // SAFETY: live client, options and queue for the duration of the call.
        let event = self.call(call, timeout, |rk, o, q| unsafe {
            rd::rd_kafka_DescribeCluster(rk, o, q)
        })?;
        // SAFETY: the result and everything read from it live as long as `event`.
        unsafe {
            let res = rd::rd_kafka_event_DescribeCluster_result(event.ptr());
            if res.is_null() {
                return Err(CallError::ReadAnswer("no DescribeCluster result".into()));
            }
            let cluster_id = copy_str(rd::rd_kafka_DescribeCluster_result_cluster_id(res));
            let controller = rd::rd_kafka_DescribeCluster_result_controller(res);
            let controller_id = (!controller.is_null()).then(|| rd::rd_kafka_Node_id(controller));
            let mut n = 0;
            let nodes = rd::rd_kafka_DescribeCluster_result_nodes(res, &mut n);
            let mut broker_ids: Vec<i32> = array(nodes, n)
                .iter()
                .map(|&node| rd::rd_kafka_Node_id(node))
                .collect();
            broker_ids.sort_unstable();
            let mut on = 0;
            // Read as `int`s (a C enum's representation), not as the Rust enum: see `int_results`.
            let ops = rd::rd_kafka_DescribeCluster_result_authorized_operations(res, &mut on)
                .cast::<c_int>();
            let ops = (!ops.is_null()).then(|| array(ops, on).to_vec());
            Ok((
                ClusterDescription {
                    cluster_id,
                    controller_id,
                    broker_ids,
                },
                ops,
            ))
        }
    }

    pub fn describe_topics(
        &self,
        names: &[String],
        timeout: Duration,
    ) -> Result<Items<String, TopicDescription>, CallError> {
        self.describe_topics_reading(names, timeout, read_topic_description)
    }

    /// Every partition's leader, replicas and ISR, by partition id.
    pub fn describe_partitions(
        &self,
        names: &[String],
        timeout: Duration,
    ) -> Result<Items<String, Vec<PartitionState>>, CallError> {
        self.describe_topics_reading(names, timeout, read_partition_states)
    }

    /// DescribeTopics, copying from each topic's description what `read` takes.
    fn describe_topics_reading<T>(
        &self,
        names: &[String],
        timeout: Duration,
        read: unsafe fn(*const rd::rd_kafka_TopicDescription_t) -> T,
    ) -> Result<Items<String, T>, CallError> {
        let c_names = names
            .iter()
            .map(|n| c_string("topic name", n))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|f| CallError::BuildRequest(f.message))?;
        let mut ptrs: Vec<*const c_char> = c_names.iter().map(|c| c.as_ptr()).collect();
        // SAFETY: `ptrs` holds `len` valid strings (kept alive by `c_names`); librdkafka copies
        // them into the collection, which is ours to destroy.
        let topics = unsafe {
            Owned::new(
                rd::rd_kafka_TopicCollection_of_topic_names(ptrs.as_mut_ptr(), ptrs.len()),
                rd::rd_kafka_TopicCollection_destroy,
            )
        }
        .ok_or_else(|| CallError::BuildRequest("topic collection".into()))?;
        let call = Call {
            op: rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBETOPICS,
            answer: rd::RD_KAFKA_EVENT_DESCRIBETOPICS_RESULT,
            operation_timeout: false,
            authorized_operations: false,
        };
        // SAFETY: live client, collection, options and queue (librdkafka copies the collection).
        let event = self.call(call, timeout, |rk, o, q| unsafe {
            rd::rd_kafka_DescribeTopics(rk, topics.ptr(), o, q)
        })?;
        // SAFETY: everything read lives as long as `event` and is copied.
        unsafe {
            let res = rd::rd_kafka_event_DescribeTopics_result(event.ptr());
            if res.is_null() {
                return Err(CallError::ReadAnswer("no DescribeTopics result".into()));
            }
            let mut n = 0;
            let descs = rd::rd_kafka_DescribeTopics_result_topics(res, &mut n);
            let mut out = Vec::with_capacity(n);
            for &desc in array(descs, n) {
                let name = copy_str(rd::rd_kafka_TopicDescription_name(desc)).unwrap_or_default();
                let result =
                    item_error(rd::rd_kafka_TopicDescription_error(desc)).map(|()| read(desc));
                out.push((name, result));
            }
            Ok(out)
        }
    }

    /// Topic names from a full metadata request (rdkafka's safe call).
    pub fn list_topic_names(&self, timeout: Duration) -> Result<Vec<String>, CallError> {
        let md = self.client.fetch_metadata(None, timeout).map_err(|e| {
            let code = e.rdkafka_error_code().map_or(-1, |c| c as i32);
            CallError::Kafka(KafkaFailure::new(code, e.to_string()))
        })?;
        Ok(md
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| t.name().to_string())
            .collect())
    }

    /// DescribeConfigs of resources of one kind, keeping the entries whose source `keep`
    /// accepts (filtered before anything is copied: a topic has about 40 configs, few of them
    /// overrides). Names the same as the request's; broker resources one per request.
    pub fn describe_configs(
        &self,
        kind: ConfigResourceType,
        names: &[String],
        keep: fn(ConfigSource) -> bool,
        timeout: Duration,
    ) -> Result<Items<String, BTreeMap<String, ConfigEntry>>, CallError> {
        let mut resources = Vec::with_capacity(names.len());
        for name in names {
            let c = c_string(kind.what(), name).map_err(|f| CallError::BuildRequest(f.message))?;
            resources.push(config_resource(kind, &c)?);
        }
        let mut ptrs: Vec<*mut rd::rd_kafka_ConfigResource_t> =
            resources.iter().map(Owned::ptr).collect();
        let call = Call {
            op: rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS,
            answer: rd::RD_KAFKA_EVENT_DESCRIBECONFIGS_RESULT,
            operation_timeout: false,
            authorized_operations: false,
        };
        // SAFETY: live resources (librdkafka copies them), options and queue.
        let event = self.call(call, timeout, |rk, o, q| unsafe {
            rd::rd_kafka_DescribeConfigs(rk, ptrs.as_mut_ptr(), ptrs.len(), o, q)
        })?;
        // SAFETY: everything read lives as long as `event` and is copied.
        unsafe {
            let res = rd::rd_kafka_event_DescribeConfigs_result(event.ptr());
            if res.is_null() {
                return Err(CallError::ReadAnswer("no DescribeConfigs result".into()));
            }
            let mut n = 0;
            let described = rd::rd_kafka_DescribeConfigs_result_resources(res, &mut n);
            let mut by_name = HashMap::with_capacity(n);
            for &resource in array(described, n) {
                let name = copy_str(rd::rd_kafka_ConfigResource_name(resource)).unwrap_or_default();
                let result = resource_error(resource).map(|()| {
                    let mut en = 0;
                    let entries = rd::rd_kafka_ConfigResource_configs(resource, &mut en);
                    let mut kept = BTreeMap::new();
                    for &entry in array(entries, en) {
                        let source = ConfigSource::from_code(
                            int_results::rd_kafka_ConfigEntry_source(entry),
                        );
                        if !keep(source) {
                            continue;
                        }
                        let Some(key) = copy_str(rd::rd_kafka_ConfigEntry_name(entry)) else {
                            continue;
                        };
                        kept.insert(
                            key,
                            ConfigEntry {
                                // NULL for sensitive values (and for keys without a value).
                                value: copy_str(rd::rd_kafka_ConfigEntry_value(entry)),
                                source,
                                read_only: rd::rd_kafka_ConfigEntry_is_read_only(entry) != 0,
                                sensitive: rd::rd_kafka_ConfigEntry_is_sensitive(entry) != 0,
                            },
                        );
                    }
                    kept
                });
                by_name.insert(name, result);
            }
            in_request_order(names, by_name)
        }
    }

    pub fn create_topics(
        &self,
        specs: &[NewTopicSpec],
        timeout: Duration,
    ) -> Result<Items<String, ()>, CallError> {
        let mut refused = HashMap::new();
        let mut new_topics = Vec::with_capacity(specs.len());
        for spec in specs {
            match new_topic(spec) {
                Ok(t) => new_topics.push(t),
                Err(f) => {
                    refused.insert(spec.name.clone(), f);
                }
            }
        }
        let mut answered = HashMap::new();
        if !new_topics.is_empty() {
            let mut ptrs: Vec<*mut rd::rd_kafka_NewTopic_t> =
                new_topics.iter().map(Owned::ptr).collect();
            let call = Call {
                op: rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_CREATETOPICS,
                answer: rd::RD_KAFKA_EVENT_CREATETOPICS_RESULT,
                operation_timeout: true,
                authorized_operations: false,
            };
            // SAFETY: live objects (librdkafka copies them), options and queue.
            let event = self.call(call, timeout, |rk, o, q| unsafe {
                rd::rd_kafka_CreateTopics(rk, ptrs.as_mut_ptr(), ptrs.len(), o, q)
            })?;
            // SAFETY: the result array lives as long as `event`.
            answered = unsafe {
                let res = rd::rd_kafka_event_CreateTopics_result(event.ptr());
                if res.is_null() {
                    return Err(CallError::ReadAnswer("no CreateTopics result".into()));
                }
                let mut n = 0;
                topic_results(rd::rd_kafka_CreateTopics_result_topics(res, &mut n), n)
            };
        }
        merge_in_order(specs.iter().map(|s| &s.name), refused, answered)
    }

    pub fn create_partitions(
        &self,
        totals: &[(String, usize)],
        timeout: Duration,
    ) -> Result<Items<String, ()>, CallError> {
        let mut refused = HashMap::new();
        let mut parts = Vec::with_capacity(totals.len());
        for (name, total) in totals {
            let made = c_string("topic name", name).and_then(|c| {
                let mut err = ErrBuf::new();
                // SAFETY: valid string and buffer; the object is ours to destroy.
                unsafe {
                    Owned::new(
                        rd::rd_kafka_NewPartitions_new(c.as_ptr(), *total, err.ptr(), err.size()),
                        rd::rd_kafka_NewPartitions_destroy,
                    )
                }
                .ok_or_else(|| KafkaFailure::new(LOCAL_INVALID_ARG, err.message()))
            });
            match made {
                Ok(p) => parts.push(p),
                Err(f) => {
                    refused.insert(name.clone(), f);
                }
            }
        }
        let mut answered = HashMap::new();
        if !parts.is_empty() {
            let mut ptrs: Vec<*mut rd::rd_kafka_NewPartitions_t> =
                parts.iter().map(Owned::ptr).collect();
            let call = Call {
                op: rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_CREATEPARTITIONS,
                answer: rd::RD_KAFKA_EVENT_CREATEPARTITIONS_RESULT,
                operation_timeout: true,
                authorized_operations: false,
            };
            // SAFETY: live objects (copied by librdkafka), options and queue.
            let event = self.call(call, timeout, |rk, o, q| unsafe {
                rd::rd_kafka_CreatePartitions(rk, ptrs.as_mut_ptr(), ptrs.len(), o, q)
            })?;
            // SAFETY: the result array lives as long as `event`.
            answered = unsafe {
                let res = rd::rd_kafka_event_CreatePartitions_result(event.ptr());
                if res.is_null() {
                    return Err(CallError::ReadAnswer("no CreatePartitions result".into()));
                }
                let mut n = 0;
                topic_results(rd::rd_kafka_CreatePartitions_result_topics(res, &mut n), n)
            };
        }
        merge_in_order(totals.iter().map(|(n, _)| n), refused, answered)
    }

    pub fn delete_topics(
        &self,
        names: &[String],
        timeout: Duration,
    ) -> Result<Items<String, ()>, CallError> {
        let mut refused = HashMap::new();
        let mut deletes = Vec::with_capacity(names.len());
        for name in names {
            match c_string("topic name", name) {
                // SAFETY: valid string; the object is ours to destroy.
                Ok(c) => match unsafe {
                    Owned::new(
                        rd::rd_kafka_DeleteTopic_new(c.as_ptr()),
                        rd::rd_kafka_DeleteTopic_destroy,
                    )
                } {
                    Some(d) => deletes.push(d),
                    None => {
                        refused.insert(
                            name.clone(),
                            KafkaFailure::new(LOCAL_INVALID_ARG, "refused by librdkafka"),
                        );
                    }
                },
                Err(f) => {
                    refused.insert(name.clone(), f);
                }
            }
        }
        let mut answered = HashMap::new();
        if !deletes.is_empty() {
            let mut ptrs: Vec<*mut rd::rd_kafka_DeleteTopic_t> =
                deletes.iter().map(Owned::ptr).collect();
            let call = Call {
                op: rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DELETETOPICS,
                answer: rd::RD_KAFKA_EVENT_DELETETOPICS_RESULT,
                operation_timeout: true,
                authorized_operations: false,
            };
            // SAFETY: live objects (copied by librdkafka), options and queue.
            let event = self.call(call, timeout, |rk, o, q| unsafe {
                rd::rd_kafka_DeleteTopics(rk, ptrs.as_mut_ptr(), ptrs.len(), o, q)
            })?;
            // SAFETY: the result array lives as long as `event`.
            answered = unsafe {
                let res = rd::rd_kafka_event_DeleteTopics_result(event.ptr());
                if res.is_null() {
                    return Err(CallError::ReadAnswer("no DeleteTopics result".into()));
                }
                let mut n = 0;
                topic_results(rd::rd_kafka_DeleteTopics_result_topics(res, &mut n), n)
            };
        }
        merge_in_order(names.iter(), refused, answered)
    }

    /// IncrementalAlterConfigs of resources of one kind (broker resources one per request).
    pub fn alter_configs(
        &self,
        kind: ConfigResourceType,
        changes: &[(String, Vec<ConfigOp>)],
        timeout: Duration,
    ) -> Result<Items<String, ()>, CallError> {
        let mut refused = HashMap::new();
        let mut resources = Vec::with_capacity(changes.len());
        for (name, ops) in changes {
            match incremental_resource(kind, name, ops) {
                Ok(Ok(r)) => resources.push(r),
                Ok(Err(f)) => {
                    refused.insert(name.clone(), f);
                }
                Err(e) => return Err(e),
            }
        }
        let mut answered = HashMap::new();
        if !resources.is_empty() {
            let mut ptrs: Vec<*mut rd::rd_kafka_ConfigResource_t> =
                resources.iter().map(Owned::ptr).collect();
            let call = Call {
                op: rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_INCREMENTALALTERCONFIGS,
                answer: rd::RD_KAFKA_EVENT_INCREMENTALALTERCONFIGS_RESULT,
                operation_timeout: false,
                authorized_operations: false,
            };
            // SAFETY: live resources (copied by librdkafka), options and queue.
            let event = self.call(call, timeout, |rk, o, q| unsafe {
                rd::rd_kafka_IncrementalAlterConfigs(rk, ptrs.as_mut_ptr(), ptrs.len(), o, q)
            })?;
            // SAFETY: everything read lives as long as `event` and is copied.
            unsafe {
                let res = rd::rd_kafka_event_IncrementalAlterConfigs_result(event.ptr());
                if res.is_null() {
                    return Err(CallError::ReadAnswer(
                        "no IncrementalAlterConfigs result".into(),
                    ));
                }
                let mut n = 0;
                let results = rd::rd_kafka_IncrementalAlterConfigs_result_resources(res, &mut n);
                for &resource in array(results, n) {
                    let name =
                        copy_str(rd::rd_kafka_ConfigResource_name(resource)).unwrap_or_default();
                    answered.insert(name, resource_error(resource));
                }
            }
        }
        merge_in_order(changes.iter().map(|(n, _)| n), refused, answered)
    }

    pub fn describe_acls(
        &self,
        filter: &AclBindingFilter,
        timeout: Duration,
    ) -> Result<Vec<AclBinding>, CallError> {
        let filter = acl_filter(filter).map_err(|f| CallError::BuildRequest(f.message))?;
        let call = Call {
            op: rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBEACLS,
            answer: rd::RD_KAFKA_EVENT_DESCRIBEACLS_RESULT,
            operation_timeout: false,
            authorized_operations: false,
        };
        // SAFETY: live filter (copied by librdkafka), options and queue.
        let event = self.call(call, timeout, |rk, o, q| unsafe {
            rd::rd_kafka_DescribeAcls(rk, filter.ptr(), o, q)
        })?;
        // SAFETY: everything read lives as long as `event` and is copied.
        let bindings = unsafe {
            let res = rd::rd_kafka_event_DescribeAcls_result(event.ptr());
            if res.is_null() {
                return Err(CallError::ReadAnswer("no DescribeAcls result".into()));
            }
            let mut n = 0;
            let acls = rd::rd_kafka_DescribeAcls_result_acls(res, &mut n);
            read_bindings(array(acls, n))
        };
        // librdkafka 2.12 reads DescribeAcls' top-level error code and then drops it: a refused
        // request looks like "no ACLs", which would make an operator recreate every binding.
        // Kafka answers a refusal with no bindings, so an empty answer is checked against the
        // permission DescribeAcls needs: Describe on the cluster.
        if bindings.is_empty() && self.may_describe_cluster(timeout)? == Some(false) {
            return Err(CallError::Kafka(KafkaFailure::new(
                CLUSTER_AUTHORIZATION_FAILED,
                "Cluster authorization failed: DescribeAcls needs Describe on the cluster, which \
                 this principal lacks (librdkafka drops DescribeAcls' own error, so this was \
                 read from DescribeCluster's authorized operations)",
            )));
        }
        Ok(bindings)
    }

    pub fn create_acls(
        &self,
        bindings: &[AclBinding],
        timeout: Duration,
    ) -> Result<Items<AclBinding, ()>, CallError> {
        let mut out: Slots<AclBinding, ()> = Vec::with_capacity(bindings.len());
        let mut natives = Vec::with_capacity(bindings.len());
        for b in bindings {
            match acl_binding(b) {
                Ok(native) => {
                    natives.push(native);
                    out.push((b.clone(), None));
                }
                Err(f) => out.push((b.clone(), Some(Err(f)))),
            }
        }
        if !natives.is_empty() {
            let mut ptrs: Vec<*mut rd::rd_kafka_AclBinding_t> =
                natives.iter().map(Owned::ptr).collect();
            let call = Call {
                op: rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_CREATEACLS,
                answer: rd::RD_KAFKA_EVENT_CREATEACLS_RESULT,
                operation_timeout: false,
                authorized_operations: false,
            };
            // SAFETY: live bindings (copied by librdkafka), options and queue.
            let event = self.call(call, timeout, |rk, o, q| unsafe {
                rd::rd_kafka_CreateAcls(rk, ptrs.as_mut_ptr(), ptrs.len(), o, q)
            })?;
            // SAFETY: everything read lives as long as `event` and is copied.
            let results: Vec<Result<(), KafkaFailure>> = unsafe {
                let res = rd::rd_kafka_event_CreateAcls_result(event.ptr());
                if res.is_null() {
                    return Err(CallError::ReadAnswer("no CreateAcls result".into()));
                }
                let mut n = 0;
                let acls = rd::rd_kafka_CreateAcls_result_acls(res, &mut n);
                array(acls, n)
                    .iter()
                    .map(|&r| item_error(rd::rd_kafka_acl_result_error(r)))
                    .collect()
            };
            // Kafka answers in the order of the request, one result per binding sent.
            fill_positional(&mut out, results)?;
        }
        Ok(out
            .into_iter()
            .map(|(b, r)| (b, r.unwrap_or(Ok(()))))
            .collect())
    }

    pub fn delete_acls(
        &self,
        filters: &[AclBindingFilter],
        timeout: Duration,
    ) -> Result<Items<AclBindingFilter, Vec<AclBinding>>, CallError> {
        let mut out: Slots<AclBindingFilter, Vec<AclBinding>> = Vec::with_capacity(filters.len());
        let mut natives = Vec::with_capacity(filters.len());
        for f in filters {
            match acl_filter(f) {
                Ok(native) => {
                    natives.push(native);
                    out.push((f.clone(), None));
                }
                Err(e) => out.push((f.clone(), Some(Err(e)))),
            }
        }
        if !natives.is_empty() {
            let mut ptrs: Vec<*mut rd::rd_kafka_AclBindingFilter_t> =
                natives.iter().map(Owned::ptr).collect();
            let call = Call {
                op: rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DELETEACLS,
                answer: rd::RD_KAFKA_EVENT_DELETEACLS_RESULT,
                operation_timeout: false,
                authorized_operations: false,
            };
            // SAFETY: live filters (copied by librdkafka), options and queue.
            let event = self.call(call, timeout, |rk, o, q| unsafe {
                rd::rd_kafka_DeleteAcls(rk, ptrs.as_mut_ptr(), ptrs.len(), o, q)
            })?;
            // SAFETY: everything read lives as long as `event` and is copied.
            let results: Vec<Result<Vec<AclBinding>, KafkaFailure>> = unsafe {
                let res = rd::rd_kafka_event_DeleteAcls_result(event.ptr());
                if res.is_null() {
                    return Err(CallError::ReadAnswer("no DeleteAcls result".into()));
                }
                let mut n = 0;
                let responses = rd::rd_kafka_DeleteAcls_result_responses(res, &mut n);
                array(responses, n)
                    .iter()
                    .map(|&r| {
                        item_error(rd::rd_kafka_DeleteAcls_result_response_error(r))?;
                        let mut mn = 0;
                        let matching =
                            rd::rd_kafka_DeleteAcls_result_response_matching_acls(r, &mut mn);
                        Ok(read_bindings(array(matching, mn)))
                    })
                    .collect()
            };
            fill_positional(&mut out, results)?;
        }
        Ok(out
            .into_iter()
            .map(|(f, r)| (f, r.unwrap_or(Ok(Vec::new()))))
            .collect())
    }

    pub fn describe_scram_credentials(
        &self,
        users: Option<&[String]>,
        timeout: Duration,
    ) -> Result<Items<String, Vec<ScramCredentialInfo>>, CallError> {
        let c_users = users
            .unwrap_or_default()
            .iter()
            .map(|u| c_string("user name", u))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|f| CallError::BuildRequest(f.message))?;
        let mut ptrs: Vec<*const c_char> = c_users.iter().map(|c| c.as_ptr()).collect();
        let call = Call {
            op: rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBEUSERSCRAMCREDENTIALS,
            answer: rd::RD_KAFKA_EVENT_DESCRIBEUSERSCRAMCREDENTIALS_RESULT,
            operation_timeout: false,
            authorized_operations: false,
        };
        // SAFETY: `ptrs` holds valid strings (librdkafka copies them), or is empty, which
        // librdkafka reads as "every user"; live options and queue.
        let event = self.call(call, timeout, |rk, o, q| unsafe {
            let users = if ptrs.is_empty() {
                ptr::null_mut()
            } else {
                ptrs.as_mut_ptr()
            };
            rd::rd_kafka_DescribeUserScramCredentials(rk, users, ptrs.len(), o, q)
        })?;
        // SAFETY: everything read lives as long as `event` and is copied.
        unsafe {
            let res = rd::rd_kafka_event_DescribeUserScramCredentials_result(event.ptr());
            if res.is_null() {
                return Err(CallError::ReadAnswer(
                    "no DescribeUserScramCredentials result".into(),
                ));
            }
            let mut n = 0;
            let descs = rd::rd_kafka_DescribeUserScramCredentials_result_descriptions(res, &mut n);
            let mut out = Vec::with_capacity(n);
            for &d in array(descs, n) {
                let user = copy_str(rd::rd_kafka_UserScramCredentialsDescription_user(d))
                    .unwrap_or_default();
                let result = item_error(rd::rd_kafka_UserScramCredentialsDescription_error(d)).map(|()| {
                    let count = rd::rd_kafka_UserScramCredentialsDescription_scramcredentialinfo_count(d);
                    let mut infos: Vec<ScramCredentialInfo> = (0..count)
                        .filter_map(|i| {
                            let info = rd::rd_kafka_UserScramCredentialsDescription_scramcredentialinfo(d, i);
                            if info.is_null() {
                                return None;
                            }
                            let mechanism = match int_results::rd_kafka_ScramCredentialInfo_mechanism(info) {
                                1 => ScramMechanism::Sha256,
                                2 => ScramMechanism::Sha512,
                                other => {
                                    tracing::warn!(user = %user, mechanism = other, "skipping a SCRAM credential of an unknown mechanism");
                                    return None;
                                }
                            };
                            Some(ScramCredentialInfo {
                                mechanism,
                                iterations: rd::rd_kafka_ScramCredentialInfo_iterations(info),
                            })
                        })
                        .collect();
                    infos.sort();
                    infos
                });
                out.push((user, result));
            }
            Ok(out)
        }
    }

    pub fn alter_scram_credentials(
        &self,
        alterations: &[ScramAlteration],
        timeout: Duration,
    ) -> Result<Items<String, ()>, CallError> {
        // Kafka answers once per user, so a user with one unusable alteration is refused whole.
        let mut users: Vec<String> = Vec::new();
        let mut refused: HashMap<String, KafkaFailure> = HashMap::new();
        for a in alterations {
            if !users.iter().any(|u| u == a.user()) {
                users.push(a.user().to_string());
            }
            if let Err(f) = check_scram_alteration(a) {
                refused.entry(a.user().to_string()).or_insert(f);
            }
        }
        let accepted: Vec<&ScramAlteration> = alterations
            .iter()
            .filter(|a| !refused.contains_key(a.user()))
            .collect();
        let mut natives = Vec::with_capacity(accepted.len());
        for a in accepted {
            match scram_alteration(a) {
                Ok(native) => natives.push(native),
                Err(f) => {
                    refused.insert(a.user().to_string(), f);
                }
            }
        }
        // Drop alterations of users refused while building (rare: NUL bytes are caught earlier).
        let mut answered = HashMap::new();
        if !natives.is_empty() {
            let mut ptrs: Vec<*mut rd::rd_kafka_UserScramCredentialAlteration_t> = natives
                .iter()
                .filter(|(user, _)| !refused.contains_key(user))
                .map(|(_, n)| n.ptr())
                .collect();
            if !ptrs.is_empty() {
                let call = Call {
                    op: rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_ALTERUSERSCRAMCREDENTIALS,
                    answer: rd::RD_KAFKA_EVENT_ALTERUSERSCRAMCREDENTIALS_RESULT,
                    operation_timeout: false,
                    authorized_operations: false,
                };
                // SAFETY: live alterations (copied by librdkafka), options and queue.
                let event = self.call(call, timeout, |rk, o, q| unsafe {
                    rd::rd_kafka_AlterUserScramCredentials(rk, ptrs.as_mut_ptr(), ptrs.len(), o, q)
                })?;
                // SAFETY: everything read lives as long as `event` and is copied.
                unsafe {
                    let res = rd::rd_kafka_event_AlterUserScramCredentials_result(event.ptr());
                    if res.is_null() {
                        return Err(CallError::ReadAnswer(
                            "no AlterUserScramCredentials result".into(),
                        ));
                    }
                    let mut n = 0;
                    let responses =
                        rd::rd_kafka_AlterUserScramCredentials_result_responses(res, &mut n);
                    for &r in array(responses, n) {
                        let user = copy_str(
                            rd::rd_kafka_AlterUserScramCredentials_result_response_user(r),
                        )
                        .unwrap_or_default();
                        answered.insert(
                            user,
                            item_error(
                                rd::rd_kafka_AlterUserScramCredentials_result_response_error(r),
                            ),
                        );
                    }
                }
            }
        }
        merge_in_order(users.iter(), refused, answered)
    }
}

// ---------------------------------------------------------------------------------------------
// Building request objects
// ---------------------------------------------------------------------------------------------

fn config_resource(
    kind: ConfigResourceType,
    name: &CStr,
) -> Result<Owned<rd::rd_kafka_ConfigResource_t>, CallError> {
    // SAFETY: valid string (copied by librdkafka); the resource is ours to destroy.
    unsafe {
        Owned::new(
            rd::rd_kafka_ConfigResource_new(kind.native(), name.as_ptr()),
            rd::rd_kafka_ConfigResource_destroy,
        )
    }
    .ok_or_else(|| CallError::BuildRequest("config resource".into()))
}

fn new_topic(spec: &NewTopicSpec) -> Result<Owned<rd::rd_kafka_NewTopic_t>, KafkaFailure> {
    let name = c_string("topic name", &spec.name)?;
    let mut err = ErrBuf::new();
    // SAFETY: valid string and buffer; the object is ours to destroy.
    let topic = unsafe {
        Owned::new(
            rd::rd_kafka_NewTopic_new(
                name.as_ptr(),
                spec.partitions.unwrap_or(-1),
                spec.replication_factor.map_or(-1, c_int::from),
                err.ptr(),
                err.size(),
            ),
            rd::rd_kafka_NewTopic_destroy,
        )
    }
    .ok_or_else(|| KafkaFailure::new(LOCAL_INVALID_ARG, err.message()))?;
    for (key, value) in &spec.configs {
        let (k, v) = (
            c_string("config key", key)?,
            c_string("config value", value)?,
        );
        // SAFETY: live object, valid strings (copied by librdkafka).
        let set = unsafe { rd::rd_kafka_NewTopic_set_config(topic.ptr(), k.as_ptr(), v.as_ptr()) };
        if set != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            return Err(KafkaFailure::new(
                LOCAL_INVALID_ARG,
                format!("config {key}: refused by librdkafka"),
            ));
        }
    }
    Ok(topic)
}

/// A resource's incremental changes; the inner `Err` refuses this resource only.
fn incremental_resource(
    kind: ConfigResourceType,
    name: &str,
    ops: &[ConfigOp],
) -> Result<Result<Owned<rd::rd_kafka_ConfigResource_t>, KafkaFailure>, CallError> {
    let c_name = match c_string(kind.what(), name) {
        Ok(c) => c,
        Err(f) => return Ok(Err(f)),
    };
    let resource = config_resource(kind, &c_name)?;
    for op in ops {
        let (key, value, kind) = match op {
            ConfigOp::Set(k, v) => (
                k,
                Some(v),
                rd::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_SET,
            ),
            ConfigOp::Delete(k) => (
                k,
                None,
                rd::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_DELETE,
            ),
        };
        let k = match c_string("config key", key) {
            Ok(k) => k,
            Err(f) => return Ok(Err(f)),
        };
        let v = match value.map(|v| c_string("config value", v)).transpose() {
            Ok(v) => v,
            Err(f) => return Ok(Err(f)),
        };
        // SAFETY: live resource, valid strings (copied); a returned error is ours to destroy.
        let error = owned_error(unsafe {
            rd::rd_kafka_ConfigResource_add_incremental_config(
                resource.ptr(),
                k.as_ptr(),
                kind,
                v.as_ref().map_or(ptr::null(), |v| v.as_ptr()),
            )
        });
        if let Some(error) = error {
            // SAFETY: live error, read before it is destroyed.
            if let Err(f) = unsafe { item_error(error.ptr()) } {
                return Ok(Err(f));
            }
        }
    }
    Ok(Ok(resource))
}

fn resource_type(t: AclResourceType) -> rd::rd_kafka_ResourceType_t {
    use rd::rd_kafka_ResourceType_t as R;
    match t {
        AclResourceType::Topic => R::RD_KAFKA_RESOURCE_TOPIC,
        AclResourceType::Group => R::RD_KAFKA_RESOURCE_GROUP,
        // librdkafka's BROKER (4) is Kafka's ACL resource type CLUSTER (4).
        AclResourceType::Cluster => R::RD_KAFKA_RESOURCE_BROKER,
        AclResourceType::TransactionalId => R::RD_KAFKA_RESOURCE_TRANSACTIONAL_ID,
    }
}

fn pattern_type(p: AclPatternType) -> rd::rd_kafka_ResourcePatternType_t {
    match p {
        AclPatternType::Literal => {
            rd::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_LITERAL
        }
        AclPatternType::Prefixed => {
            rd::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_PREFIXED
        }
    }
}

fn operation(o: AclOperation) -> rd::rd_kafka_AclOperation_t {
    use rd::rd_kafka_AclOperation_t as O;
    match o {
        AclOperation::All => O::RD_KAFKA_ACL_OPERATION_ALL,
        AclOperation::Read => O::RD_KAFKA_ACL_OPERATION_READ,
        AclOperation::Write => O::RD_KAFKA_ACL_OPERATION_WRITE,
        AclOperation::Create => O::RD_KAFKA_ACL_OPERATION_CREATE,
        AclOperation::Delete => O::RD_KAFKA_ACL_OPERATION_DELETE,
        AclOperation::Alter => O::RD_KAFKA_ACL_OPERATION_ALTER,
        AclOperation::Describe => O::RD_KAFKA_ACL_OPERATION_DESCRIBE,
        AclOperation::ClusterAction => O::RD_KAFKA_ACL_OPERATION_CLUSTER_ACTION,
        AclOperation::DescribeConfigs => O::RD_KAFKA_ACL_OPERATION_DESCRIBE_CONFIGS,
        AclOperation::AlterConfigs => O::RD_KAFKA_ACL_OPERATION_ALTER_CONFIGS,
        AclOperation::IdempotentWrite => O::RD_KAFKA_ACL_OPERATION_IDEMPOTENT_WRITE,
    }
}

fn permission(p: AclPermission) -> rd::rd_kafka_AclPermissionType_t {
    match p {
        AclPermission::Allow => {
            rd::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW
        }
        AclPermission::Deny => rd::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_DENY,
    }
}

/// The owned binding for librdkafka's enum values; `None` for values it cannot represent here
/// (librdkafka maps types it does not know, such as delegation-token ACLs, to UNKNOWN).
fn binding_from(
    restype: rd::rd_kafka_ResourceType_t,
    pattern: rd::rd_kafka_ResourcePatternType_t,
    op: rd::rd_kafka_AclOperation_t,
    perm: rd::rd_kafka_AclPermissionType_t,
) -> Option<(AclResourceType, AclPatternType, AclOperation, AclPermission)> {
    let resource_type = [
        AclResourceType::Topic,
        AclResourceType::Group,
        AclResourceType::Cluster,
        AclResourceType::TransactionalId,
    ]
    .into_iter()
    .find(|&t| resource_type(t) == restype)?;
    let pattern_type = [AclPatternType::Literal, AclPatternType::Prefixed]
        .into_iter()
        .find(|&p| pattern_type(p) == pattern)?;
    let operation = [
        AclOperation::All,
        AclOperation::Read,
        AclOperation::Write,
        AclOperation::Create,
        AclOperation::Delete,
        AclOperation::Alter,
        AclOperation::Describe,
        AclOperation::ClusterAction,
        AclOperation::DescribeConfigs,
        AclOperation::AlterConfigs,
        AclOperation::IdempotentWrite,
    ]
    .into_iter()
    .find(|&o| operation(o) == op)?;
    let permission = [AclPermission::Allow, AclPermission::Deny]
        .into_iter()
        .find(|&p| permission(p) == perm)?;
    Some((resource_type, pattern_type, operation, permission))
}

fn acl_binding(b: &AclBinding) -> Result<Owned<rd::rd_kafka_AclBinding_t>, KafkaFailure> {
    let name = c_string("resource name", &b.resource_name)?;
    let principal = c_string("principal", &b.principal)?;
    let host = c_string("host", &b.host)?;
    let mut err = ErrBuf::new();
    // SAFETY: valid strings (copied by librdkafka) and buffer; the binding is ours to destroy.
    unsafe {
        Owned::new(
            rd::rd_kafka_AclBinding_new(
                resource_type(b.resource_type),
                name.as_ptr(),
                pattern_type(b.pattern_type),
                principal.as_ptr(),
                host.as_ptr(),
                operation(b.operation),
                permission(b.permission),
                err.ptr(),
                err.size(),
            ),
            rd::rd_kafka_AclBinding_destroy,
        )
    }
    .ok_or_else(|| KafkaFailure::new(LOCAL_INVALID_ARG, err.message()))
}

fn acl_filter(
    f: &AclBindingFilter,
) -> Result<Owned<rd::rd_kafka_AclBindingFilter_t>, KafkaFailure> {
    let opt = |what, v: &Option<String>| v.as_deref().map(|s| c_string(what, s)).transpose();
    let name = opt("resource name", &f.resource_name)?;
    let principal = opt("principal", &f.principal)?;
    let host = opt("host", &f.host)?;
    let raw = |c: &Option<CString>| c.as_ref().map_or(ptr::null(), |c| c.as_ptr());
    let pattern = match f.pattern {
        AclPatternFilter::Any => rd::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_ANY,
        AclPatternFilter::Match => {
            rd::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_MATCH
        }
        AclPatternFilter::Exactly(p) => pattern_type(p),
    };
    let mut err = ErrBuf::new();
    // SAFETY: valid strings or NULL ("any"), copied by librdkafka; the filter is ours to destroy.
    unsafe {
        Owned::new(
            rd::rd_kafka_AclBindingFilter_new(
                f.resource_type.map_or(
                    rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_ANY,
                    resource_type,
                ),
                raw(&name),
                pattern,
                raw(&principal),
                raw(&host),
                f.operation.map_or(
                    rd::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_ANY,
                    operation,
                ),
                f.permission.map_or(
                    rd::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_ANY,
                    permission,
                ),
                err.ptr(),
                err.size(),
            ),
            rd::rd_kafka_AclBinding_destroy,
        )
    }
    .ok_or_else(|| KafkaFailure::new(LOCAL_INVALID_ARG, err.message()))
}

/// Copies ACL bindings out of an answer.
///
/// # Safety
/// Every pointer is a live binding.
unsafe fn read_bindings(acls: &[*const rd::rd_kafka_AclBinding_t]) -> Vec<AclBinding> {
    let mut out = Vec::with_capacity(acls.len());
    for &acl in acls {
        // SAFETY: per the contract; librdkafka clamps the enum values it reads from the wire to
        // its known values (UNKNOWN otherwise), so they are valid Rust enum values.
        let (kinds, name, principal, host) = unsafe {
            (
                binding_from(
                    rd::rd_kafka_AclBinding_restype(acl),
                    rd::rd_kafka_AclBinding_resource_pattern_type(acl),
                    rd::rd_kafka_AclBinding_operation(acl),
                    rd::rd_kafka_AclBinding_permission_type(acl),
                ),
                copy_str(rd::rd_kafka_AclBinding_name(acl)).unwrap_or_default(),
                copy_str(rd::rd_kafka_AclBinding_principal(acl)).unwrap_or_default(),
                copy_str(rd::rd_kafka_AclBinding_host(acl)).unwrap_or_default(),
            )
        };
        match kinds {
            Some((resource_type, pattern_type, operation, permission)) => out.push(AclBinding {
                resource_type,
                resource_name: name,
                pattern_type,
                principal,
                host,
                operation,
                permission,
            }),
            None => tracing::warn!(
                resource = %name,
                principal = %principal,
                "skipping an ACL whose resource, pattern, operation or permission type this client does not know"
            ),
        }
    }
    out
}

fn scram_mechanism(m: ScramMechanism) -> rd::rd_kafka_ScramMechanism_t {
    match m {
        ScramMechanism::Sha256 => rd::rd_kafka_ScramMechanism_t::RD_KAFKA_SCRAM_MECHANISM_SHA_256,
        ScramMechanism::Sha512 => rd::rd_kafka_ScramMechanism_t::RD_KAFKA_SCRAM_MECHANISM_SHA_512,
    }
}

/// What librdkafka would refuse for the whole request, refused per user instead.
fn check_scram_alteration(a: &ScramAlteration) -> Result<(), KafkaFailure> {
    let invalid = |m: &str| Err(KafkaFailure::new(LOCAL_INVALID_ARG, m.to_string()));
    if a.user().is_empty() {
        return invalid("empty user name");
    }
    c_string("user name", a.user())?;
    if let ScramAlteration::Upsert(u) = a {
        if u.password.is_empty() {
            return invalid("empty password");
        }
        if u.salt.is_empty() {
            return invalid("empty salt");
        }
        if u.iterations <= 0 {
            return invalid("iterations must be positive");
        }
    }
    Ok(())
}

/// A native alteration with its user.
fn scram_alteration(
    a: &ScramAlteration,
) -> Result<(String, Owned<rd::rd_kafka_UserScramCredentialAlteration_t>), KafkaFailure> {
    let user = c_string("user name", a.user())?;
    // SAFETY: valid string and byte buffers with their lengths (copied by librdkafka, which derives
    // the salted password from them); the alteration is ours to destroy.
    let native = unsafe {
        let ptr = match a {
            ScramAlteration::Upsert(u) => rd::rd_kafka_UserScramCredentialUpsertion_new(
                user.as_ptr(),
                scram_mechanism(u.mechanism),
                u.iterations,
                u.password.as_ptr(),
                u.password.len(),
                u.salt.as_ptr(),
                u.salt.len(),
            ),
            ScramAlteration::Delete { mechanism, .. } => {
                rd::rd_kafka_UserScramCredentialDeletion_new(
                    user.as_ptr(),
                    scram_mechanism(*mechanism),
                )
            }
        };
        Owned::new(ptr, rd::rd_kafka_UserScramCredentialAlteration_destroy)
    }
    .ok_or_else(|| KafkaFailure::new(LOCAL_INVALID_ARG, "refused by librdkafka"))?;
    Ok((a.user().to_string(), native))
}

// ---------------------------------------------------------------------------------------------
// Reading answers
// ---------------------------------------------------------------------------------------------

/// Copies topic results (CreateTopics, DeleteTopics, CreatePartitions) by topic name.
///
/// # Safety
/// `arr` is NULL or holds `n` live results.
unsafe fn topic_results(
    arr: *mut *const rd::rd_kafka_topic_result_t,
    n: usize,
) -> HashMap<String, Result<(), KafkaFailure>> {
    let mut out = HashMap::with_capacity(n);
    // SAFETY: per the contract.
    for &r in unsafe { array(arr, n) } {
        // SAFETY: live result; strings copied.
        unsafe {
            let name = copy_str(rd::rd_kafka_topic_result_name(r)).unwrap_or_default();
            let code = int_results::rd_kafka_topic_result_error(r);
            let result = if code == 0 {
                Ok(())
            } else {
                Err(failure(
                    code,
                    copy_str(rd::rd_kafka_topic_result_error_string(r)),
                ))
            };
            out.insert(name, result);
        }
    }
    out
}

/// A topic's ID, partition count, replication factor and internal flag.
///
/// # Safety
/// `desc` is a live description without error.
unsafe fn read_topic_description(desc: *const rd::rd_kafka_TopicDescription_t) -> TopicDescription {
    // SAFETY: per the contract; everything read is copied.
    unsafe {
        let name = copy_str(rd::rd_kafka_TopicDescription_name(desc)).unwrap_or_default();
        let id = rd::rd_kafka_TopicDescription_topic_id(desc);
        let topic_id = if id.is_null() {
            None
        } else {
            topic_id_string(
                rd::rd_kafka_Uuid_most_significant_bits(id),
                rd::rd_kafka_Uuid_least_significant_bits(id),
            )
        };
        let mut pn = 0;
        let parts = array(rd::rd_kafka_TopicDescription_partitions(desc, &mut pn), pn);
        let replication_factor = parts
            .iter()
            .find(|&&p| rd::rd_kafka_TopicPartitionInfo_partition(p) == 0)
            .map_or(0, |&p| {
                let mut rn = 0;
                rd::rd_kafka_TopicPartitionInfo_replicas(p, &mut rn);
                rn
            });
        TopicDescription {
            name,
            topic_id,
            partitions: parts.len(),
            replication_factor,
            internal: rd::rd_kafka_TopicDescription_is_internal(desc) != 0,
        }
    }
}

/// Every partition's leader, replicas and ISR, sorted by partition id. librdkafka keeps the id
/// of a replica that is not in the cluster metadata (an offline broker), and has no leader node
/// when Kafka reports leader -1.
///
/// # Safety
/// `desc` is a live description without error.
unsafe fn read_partition_states(
    desc: *const rd::rd_kafka_TopicDescription_t,
) -> Vec<PartitionState> {
    // SAFETY: per the contract: node arrays of the counts librdkafka gives, each node live.
    unsafe {
        let node_ids = |nodes: *mut *const rd::rd_kafka_Node_t, n: usize| -> Vec<i32> {
            array(nodes, n)
                .iter()
                .filter(|node| !node.is_null())
                .map(|&node| rd::rd_kafka_Node_id(node))
                .collect()
        };
        let mut pn = 0;
        let parts = array(rd::rd_kafka_TopicDescription_partitions(desc, &mut pn), pn);
        let mut states: Vec<PartitionState> = parts
            .iter()
            .map(|&p| {
                let leader = rd::rd_kafka_TopicPartitionInfo_leader(p);
                let (mut rn, mut isn) = (0, 0);
                let replicas = rd::rd_kafka_TopicPartitionInfo_replicas(p, &mut rn);
                let isr = rd::rd_kafka_TopicPartitionInfo_isr(p, &mut isn);
                PartitionState {
                    partition: rd::rd_kafka_TopicPartitionInfo_partition(p),
                    leader: (!leader.is_null())
                        .then(|| rd::rd_kafka_Node_id(leader))
                        .filter(|&id| id >= 0),
                    replicas: node_ids(replicas, rn),
                    isr: node_ids(isr, isn),
                }
            })
            .collect();
        states.sort_by_key(|p| p.partition);
        states
    }
}

/// A config resource's own error (DescribeConfigs, IncrementalAlterConfigs).
///
/// # Safety
/// `resource` is live.
unsafe fn resource_error(
    resource: *const rd::rd_kafka_ConfigResource_t,
) -> Result<(), KafkaFailure> {
    // SAFETY: per the contract.
    unsafe {
        let code = int_results::rd_kafka_ConfigResource_error(resource);
        if code == 0 {
            Ok(())
        } else {
            Err(failure(
                code,
                copy_str(rd::rd_kafka_ConfigResource_error_string(resource)),
            ))
        }
    }
}

/// One result per requested name, in request order: refused locally, or as Kafka answered.
fn merge_in_order<'a, T>(
    names: impl Iterator<Item = &'a String>,
    mut refused: HashMap<String, KafkaFailure>,
    mut answered: HashMap<String, Result<T, KafkaFailure>>,
) -> Result<Items<String, T>, CallError> {
    names
        .map(|name| {
            if let Some(f) = refused.remove(name) {
                return Ok((name.clone(), Err(f)));
            }
            match answered.remove(name) {
                Some(r) => Ok((name.clone(), r)),
                None => Err(CallError::ReadAnswer(format!("no result for {name:?}"))),
            }
        })
        .collect()
}

fn in_request_order<T>(
    names: &[String],
    answered: HashMap<String, Result<T, KafkaFailure>>,
) -> Result<Items<String, T>, CallError> {
    merge_in_order(names.iter(), HashMap::new(), answered)
}

/// Puts positional answers into the slots not already refused locally.
fn fill_positional<K, T>(
    out: &mut Slots<K, T>,
    results: Vec<Result<T, KafkaFailure>>,
) -> Result<(), CallError> {
    let open = out.iter().filter(|(_, r)| r.is_none()).count();
    if open != results.len() {
        return Err(CallError::ReadAnswer(format!(
            "{} results for {open} items",
            results.len()
        )));
    }
    let mut results = results.into_iter();
    for (_, slot) in out.iter_mut().filter(|(_, r)| r.is_none()) {
        *slot = results.next();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_follow_request_order_with_local_refusals_in_place() {
        let names = ["a".to_string(), "b".to_string(), "c".to_string()];
        let refused =
            HashMap::from([("b".to_string(), KafkaFailure::new(LOCAL_INVALID_ARG, "nul"))]);
        let answered = HashMap::from([
            ("c".to_string(), Err(KafkaFailure::new(36, "exists"))),
            ("a".to_string(), Ok(())),
        ]);
        let merged = merge_in_order(names.iter(), refused, answered).unwrap();
        let order: Vec<&str> = merged.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(order, ["a", "b", "c"]);
        assert!(merged[0].1.is_ok());
        assert_eq!(merged[1].1.as_ref().unwrap_err().code, LOCAL_INVALID_ARG);
        assert_eq!(merged[2].1.as_ref().unwrap_err().code, 36);
    }

    #[test]
    fn a_missing_answer_fails_the_call() {
        let names = ["a".to_string()];
        let err = merge_in_order::<()>(names.iter(), HashMap::new(), HashMap::new()).unwrap_err();
        assert!(matches!(err, CallError::ReadAnswer(_)), "{err:?}");
    }

    #[test]
    fn positional_answers_skip_refused_slots_and_must_match_in_number() {
        let mut out: Vec<(u8, Option<Result<(), KafkaFailure>>)> = vec![
            (0, None),
            (1, Some(Err(KafkaFailure::new(LOCAL_INVALID_ARG, "x")))),
            (2, None),
        ];
        fill_positional(&mut out, vec![Ok(()), Err(KafkaFailure::new(92, "dup"))]).unwrap();
        assert!(matches!(out[0].1, Some(Ok(()))));
        assert_eq!(
            out[1].1.as_ref().unwrap().as_ref().unwrap_err().code,
            LOCAL_INVALID_ARG
        );
        assert_eq!(out[2].1.as_ref().unwrap().as_ref().unwrap_err().code, 92);
        let mut short: Vec<(u8, Option<Result<(), KafkaFailure>>)> = vec![(0, None), (1, None)];
        assert!(fill_positional(&mut short, vec![Ok(())]).is_err());
    }

    #[test]
    fn acl_enums_round_trip_through_librdkafkas_values() {
        for t in [
            AclResourceType::Topic,
            AclResourceType::Group,
            AclResourceType::Cluster,
            AclResourceType::TransactionalId,
        ] {
            let back = binding_from(
                resource_type(t),
                pattern_type(AclPatternType::Prefixed),
                operation(AclOperation::IdempotentWrite),
                permission(AclPermission::Deny),
            );
            assert_eq!(
                back,
                Some((
                    t,
                    AclPatternType::Prefixed,
                    AclOperation::IdempotentWrite,
                    AclPermission::Deny
                ))
            );
        }
        // Values librdkafka could not name come back as UNKNOWN and are not representable.
        assert_eq!(
            binding_from(
                rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_UNKNOWN,
                pattern_type(AclPatternType::Literal),
                operation(AclOperation::Read),
                permission(AclPermission::Allow),
            ),
            None
        );
    }

    #[test]
    fn scram_alterations_librdkafka_would_refuse_are_caught_per_user() {
        let upsert = |user: &str, password: &[u8], salt: &[u8], iterations| {
            ScramAlteration::Upsert(super::super::admin::ScramUpsertion {
                user: user.into(),
                mechanism: ScramMechanism::Sha512,
                iterations,
                password: password.to_vec(),
                salt: salt.to_vec(),
            })
        };
        assert!(check_scram_alteration(&upsert("alice", b"pw", b"salt", 4096)).is_ok());
        for bad in [
            upsert("", b"pw", b"salt", 4096),
            upsert("al\0ice", b"pw", b"salt", 4096),
            upsert("alice", b"", b"salt", 4096),
            upsert("alice", b"pw", b"", 4096),
            upsert("alice", b"pw", b"salt", 0),
        ] {
            let f = check_scram_alteration(&bad).unwrap_err();
            assert_eq!(f.reason(), "InvalidArg", "{bad:?}");
        }
    }

    #[test]
    fn new_topic_objects_are_refused_per_item_for_bad_input() {
        let ok = NewTopicSpec {
            name: "t".into(),
            partitions: Some(3),
            replication_factor: None,
            configs: [("retention.ms".to_string(), "1000".to_string())].into(),
        };
        assert!(new_topic(&ok).is_ok());
        let too_many_partitions = NewTopicSpec {
            partitions: Some(1_000_000),
            ..ok.clone()
        };
        let f = new_topic(&too_many_partitions).err().unwrap();
        assert_eq!(f.code, LOCAL_INVALID_ARG);
        assert!(!f.message.is_empty(), "librdkafka says why");
        let nul = NewTopicSpec {
            name: "a\0b".into(),
            ..ok
        };
        assert!(new_topic(&nul).err().unwrap().message.contains("NUL"));
    }

    #[test]
    fn a_timeout_takes_the_code_of_the_client_error_that_caused_it() {
        let timed_out =
            || KafkaFailure::new(LOCAL_TIMED_OUT, "Failed while waiting for controller");
        let error = |code, message: &str| ClientError {
            at: Instant::now(),
            code,
            message: message.into(),
        };
        let meanwhile = [
            error(Some(-169), "SASL authentication error"),
            error(Some(LOCAL_ALL_BROKERS_DOWN), "1/1 brokers are down"),
            error(None, "a log line at error level"),
        ];
        let f = explain_timeout(timed_out(), &meanwhile);
        assert_eq!(f.reason(), "Authentication");
        assert_eq!(
            f.message,
            "Failed while waiting for controller (client error meanwhile: SASL authentication error)"
        );
        // With nothing better, "all brokers down" still says more than a bare timeout.
        let f = explain_timeout(timed_out(), &meanwhile[1..2]);
        assert_eq!(f.code, LOCAL_ALL_BROKERS_DOWN);
        assert_eq!(explain_timeout(timed_out(), &[]), timed_out());
        // Kafka's own refusals are never rewritten.
        let refused = KafkaFailure::new(36, "exists");
        assert_eq!(explain_timeout(refused.clone(), &meanwhile), refused);
    }

    #[test]
    fn error_descriptions_come_from_librdkafka_even_for_unknown_codes() {
        assert!(!describe_code(36).is_empty());
        // A code librdkafka 2.12 does not know must not be read as its enum (this would be UB).
        assert!(!describe_code(133).is_empty());
    }
}
