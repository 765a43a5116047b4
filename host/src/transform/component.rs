//! Transforms built as WebAssembly components of the `weir:transform` world
//! (`guest-sdk/wit/transform.wit`): Python and JavaScript guests, whose runtimes loop over the
//! records themselves. See `guest-sdk/COMPONENTS.md` for the contract.
//!
//! A batch goes to the guest in chunks, each under one record's CPU budget and deadline. A
//! chunk that runs out of either, traps, or answers malformed is run again one record at a
//! time, each with its own budget in a fresh instance after any trap, so a record's outcome
//! never depends on its neighbours: the same outcome as if it had come alone.

use super::engine::deadline_ticks;
use super::error::LoadError;
use super::guest::{GuestState, LOG_LINES_PER_RECORD};
use super::limits::TransformLimits;
use super::output::Output;
use super::session::{ACCEPT, REJECT, check_answer, classify};
use crate::source::failure::{ErrorType, Failure};
use crate::source::record::Record;
use wasmtime::Store;
use wasmtime::component::{Component, HasSelf, Linker, types::ComponentItem};

wasmtime::component::bindgen!({
    path: "../guest-sdk/wit/transform.wit",
    world: "transform",
});

/// The world's one import.
const LOG: &str = "log";
/// Most records sent to the guest in one call.
const CHUNK_RECORDS: usize = 32;
/// Most record bytes sent to the guest in one call (a chunk holds at least one record).
const CHUNK_BYTES: usize = 1 << 20;

impl TransformImports for GuestState {
    fn log(&mut self, line: String) {
        GuestState::log(self, line.as_bytes());
    }
}

/// A checked component, ready to instantiate.
pub(crate) struct Pre(TransformPre<GuestState>);

/// Links a component against the world's imports, refusing any other import and a component
/// that does not export the world's functions.
pub(crate) fn link(component: &Component) -> Result<Pre, LoadError> {
    let engine = component.engine();
    for (name, item) in component.component_type().imports(engine) {
        if name != LOG || !matches!(item.ty, ComponentItem::ComponentFunc(_)) {
            return Err(LoadError::ForbiddenComponentImport {
                name: name.to_owned(),
            });
        }
    }
    let mut linker = Linker::<GuestState>::new(engine);
    Transform::add_to_linker::<_, HasSelf<GuestState>>(&mut linker, |state| state)
        .expect("the world's imports have distinct names");
    let pre = linker
        .instantiate_pre(component)
        .map_err(|e| LoadError::Instantiate(format!("{e:#}")))?;
    TransformPre::new(pre)
        .map(Pre)
        .map_err(|e| LoadError::WrongWorld(format!("{e:#}")))
}

/// A live instance with its store.
struct Instance {
    store: Store<GuestState>,
    bindings: Transform,
}

impl Pre {
    fn instantiate(&self, limits: &TransformLimits) -> Result<Instance, Failure> {
        let state = GuestState::new(
            limits.max_output_bytes,
            limits.max_segments,
            limits.memory_bytes,
        );
        let mut store = Store::new(self.0.engine(), state);
        store.limiter(|state| state);
        store.epoch_deadline_trap();
        budget(&mut store, limits, 1);
        match self.0.instantiate(&mut store) {
            Ok(bindings) => Ok(Instance { store, bindings }),
            Err(e) => Err(classify(e, store.data())),
        }
    }

    /// The partition columns the component declares (a trial instance, within one record's
    /// budget): None when it declares none.
    pub(crate) fn columns(&self, limits: &TransformLimits) -> Result<Option<Vec<String>>, String> {
        let mut instance = self.instantiate(limits).map_err(|f| f.message)?;
        let columns = instance
            .bindings
            .call_columns(&mut instance.store)
            .map_err(|e| classify(e, instance.store.data()).message)?;
        Ok(Some(columns).filter(|c| !c.is_empty()))
    }
}

/// Gives the store `records` records' worth of budget: fuel, deadline and log lines.
fn budget(store: &mut Store<GuestState>, limits: &TransformLimits, records: u32) {
    store
        .set_fuel(limits.fuel_per_record)
        .expect("fuel is enabled on the engine");
    store.set_epoch_deadline(deadline_ticks(limits.deadline));
    let state = store.data_mut();
    state.begin_record(0);
    state.log_budget = LOG_LINES_PER_RECORD.saturating_mul(records);
}

/// One batch's records through a component: an instance reused across chunks, dropped after
/// any trap or error outcome.
pub(crate) struct Session<'t> {
    pre: &'t Pre,
    limits: TransformLimits,
    live: Option<Instance>,
    output: Output,
}

impl<'t> Session<'t> {
    pub(crate) fn new(pre: &'t Pre, limits: TransformLimits) -> Self {
        Self {
            pre,
            limits,
            live: None,
            output: Output::default(),
        }
    }

    /// One record on its own.
    pub(crate) fn apply(&mut self, record: &Record) -> Result<&Output, Failure> {
        let mut answer = Ok(());
        self.apply_each(&[record], &mut |_, result| answer = result.map(|_| ()));
        answer.map(|()| &self.output)
    }

    pub(crate) fn instantiate(&mut self) -> Result<(), Failure> {
        if self.live.is_none() {
            self.live = Some(self.pre.instantiate(&self.limits)?);
        }
        Ok(())
    }

    /// Runs the records in order, answering each through `each(index, result)`.
    pub(crate) fn apply_each(
        &mut self,
        records: &[&Record],
        each: &mut dyn FnMut(usize, Result<&Output, Failure>),
    ) {
        let mut start = 0;
        while start < records.len() {
            let end = chunk_end(records, start);
            self.run_chunk(&records[start..end], start, each);
            start = end;
        }
    }

    /// A chunk in one call; on any doubt, record by record.
    fn run_chunk(
        &mut self,
        chunk: &[&Record],
        offset: usize,
        each: &mut dyn FnMut(usize, Result<&Output, Failure>),
    ) {
        let mut done = 0;
        while done < chunk.len() {
            let rest = &chunk[done..];
            let outcomes = match self.call(rest) {
                Ok(outcomes) if well_formed(&outcomes, rest.len()) => outcomes,
                _ => {
                    // Out of budget, a trap or a malformed answer: find out which record.
                    self.live = None;
                    for (i, record) in rest.iter().enumerate() {
                        let result = self.run_alone(record);
                        each(offset + done + i, result.map(|()| &self.output));
                    }
                    return;
                }
            };
            let answered = outcomes.len();
            for (i, outcome) in outcomes.into_iter().enumerate() {
                let result = self.answer(outcome);
                each(offset + done + i, result.map(|()| &self.output));
            }
            done += answered;
        }
    }

    /// One record in its own call, with its own budget.
    fn run_alone(&mut self, record: &Record) -> Result<(), Failure> {
        match self.call(std::slice::from_ref(&record)) {
            Ok(outcomes) if outcomes.len() == 1 => {
                let outcome = outcomes.into_iter().next().expect("one outcome");
                self.answer(outcome)
            }
            Ok(outcomes) => {
                self.live = None;
                Err(Failure::new(
                    ErrorType::InvalidOutput,
                    "outcome_count",
                    format!(
                        "the guest answered {} outcomes for 1 record",
                        outcomes.len()
                    ),
                ))
            }
            Err(failure) => {
                self.live = None;
                Err(failure)
            }
        }
    }

    /// Sends records to the guest under one record's budget.
    fn call(&mut self, records: &[&Record]) -> Result<Vec<Outcome>, Failure> {
        self.instantiate()?;
        let live = self.live.as_mut().expect("instantiated above");
        let count = u32::try_from(records.len()).unwrap_or(u32::MAX);
        budget(&mut live.store, &self.limits, count);
        let inputs: Vec<Input> = records.iter().map(|r| input(r)).collect();
        live.bindings
            .call_transform_batch(&mut live.store, &inputs)
            .map_err(|e| classify(e, live.store.data()))
    }

    /// Turns one outcome into the session's output, checked as a core module's answer is.
    fn answer(&mut self, outcome: Outcome) -> Result<(), Failure> {
        let output = &mut self.output;
        output.clear();
        let status = match outcome {
            Outcome::Accept(accepted) => {
                if accepted.partition.len() > self.limits.max_segments {
                    return Err(invalid(
                        "too_many_segments",
                        format!("more than {} partition segments", self.limits.max_segments),
                    ));
                }
                for segment in &accepted.partition {
                    output.push_segment(segment.name.as_bytes(), segment.value.as_bytes());
                }
                if let Some(body) = &accepted.body {
                    output.set_body(body);
                }
                ACCEPT
            }
            Outcome::Reject(rejected) => {
                output.set_rejection(rejected.code.as_bytes(), rejected.message.as_bytes());
                REJECT
            }
            Outcome::Error(message) => {
                // Whatever the guest was doing is suspect: the next record gets a fresh instance.
                self.live = None;
                let message = truncate(&message, super::guest::LOG_LINE_BYTES);
                return Err(Failure::new(
                    ErrorType::Trap,
                    "exception",
                    format!("the guest raised: {message}"),
                ));
            }
        };
        if output.held_bytes() > self.limits.max_output_bytes {
            return Err(invalid(
                "output_cap",
                format!(
                    "output cap exceeded: {} bytes, the cap is {}",
                    output.held_bytes(),
                    self.limits.max_output_bytes
                ),
            ));
        }
        check_answer(status, output)
    }
}

/// One outcome per record, or fewer when the last answered is an error; an error anywhere else
/// means the guest went on in an instance it should have given up.
fn well_formed(outcomes: &[Outcome], records: usize) -> bool {
    let Some((last, before)) = outcomes.split_last() else {
        return false;
    };
    if before.iter().any(|o| matches!(o, Outcome::Error(_))) {
        return false;
    }
    match last {
        Outcome::Error(_) => outcomes.len() <= records,
        _ => outcomes.len() == records,
    }
}

/// Where the chunk starting at `start` ends.
fn chunk_end(records: &[&Record], start: usize) -> usize {
    let mut bytes = 0;
    let mut end = start;
    while end < records.len() && end - start < CHUNK_RECORDS {
        bytes += records[end].data.len();
        if end > start && bytes > CHUNK_BYTES {
            break;
        }
        end += 1;
    }
    end
}

fn input(record: &Record) -> Input {
    Input {
        data: record.data.to_vec(),
        partition_key: record.partition_key.to_string(),
        sequence_number: record.position.sequence_number().to_owned(),
        arrival_ms: record.arrival.unix_millis(),
    }
}

fn invalid(code: &str, message: String) -> Failure {
    Failure::new(ErrorType::InvalidOutput, code, message)
}

fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
