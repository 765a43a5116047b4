//! A transform session: one guest instance reused across a batch's records, replaced after a
//! trap so one bad record cannot poison the next. A core module is called once per record; a
//! component's session is in `component.rs`.

use super::RecordTransform;
use super::component;
use super::engine::deadline_ticks;
use super::guest::{GuestState, HostTrap};
use super::load::{Code, WasmTransform};
use super::output::Output;
use crate::source::failure::{ErrorType, Failure};
use crate::source::record::Record;
use wasmtime::{InstancePre, Memory, Store, Trap, TypedFunc};

/// Runs one batch's records through a [`WasmTransform`].
pub struct WasmSession<'t> {
    transform: &'t WasmTransform,
    kind: Kind<'t>,
}

enum Kind<'t> {
    Module(ModuleSession<'t>),
    Component(component::Session<'t>),
}

/// A core module's session: records one call at a time.
struct ModuleSession<'t> {
    pre: &'t InstancePre<GuestState>,
    limits: super::TransformLimits,
    live: Option<Instance>,
}

struct Instance {
    store: Store<GuestState>,
    memory: Memory,
    input: TypedFunc<i32, i32>,
    run: TypedFunc<(i32, i32, i32, i64), i32>,
}

/// How the guest says it accepted or rejected the record.
pub(super) const ACCEPT: i32 = 0;
pub(super) const REJECT: i32 = 1;

impl WasmTransform {
    /// A session for one batch; the instance is created on its first record.
    pub fn session(&self) -> WasmSession<'_> {
        let kind = match &self.code {
            Code::Module(pre) => Kind::Module(ModuleSession {
                pre,
                limits: self.limits,
                live: None,
            }),
            Code::Component(pre) => Kind::Component(component::Session::new(pre, self.limits)),
        };
        WasmSession {
            transform: self,
            kind,
        }
    }
}

impl WasmSession<'_> {
    /// Creates the instance now (load-time checks use this to prove the module initialises).
    pub(crate) fn instantiate(&mut self) -> Result<(), Failure> {
        match &mut self.kind {
            Kind::Module(session) => session.instantiate(),
            Kind::Component(session) => session.instantiate(),
        }
    }
}

impl ModuleSession<'_> {
    fn instantiate(&mut self) -> Result<(), Failure> {
        if self.live.is_none() {
            self.live = Some(self.new_instance()?);
        }
        Ok(())
    }

    fn new_instance(&self) -> Result<Instance, Failure> {
        let limits = &self.limits;
        let state = GuestState::new(
            limits.max_output_bytes,
            limits.max_segments,
            limits.memory_bytes,
        );
        let mut store = Store::new(self.pre.module().engine(), state);
        store.limiter(|state| state);
        store.epoch_deadline_trap();
        let fail = |store: &Store<GuestState>, e: wasmtime::Error| classify(e, store.data());
        store
            .set_fuel(limits.fuel_per_record)
            .expect("fuel is enabled on the engine");
        store.set_epoch_deadline(deadline_ticks(limits.deadline));
        let instance = match self.pre.instantiate(&mut store) {
            Ok(instance) => instance,
            Err(e) => return Err(fail(&store, e)),
        };
        let memory = instance
            .get_memory(&mut store, "memory")
            .expect("checked at load time");
        store.data_mut().memory = Some(memory);
        let mut init = |name| instance.get_typed_func::<(), ()>(&mut store, name).ok();
        let initialize = init("_initialize");
        let weir_init = init("weir_v1_init").expect("checked at load time");
        for f in initialize.into_iter().chain([weir_init]) {
            if let Err(e) = f.call(&mut store, ()) {
                return Err(fail(&store, e));
            }
        }
        let input = instance
            .get_typed_func(&mut store, "weir_v1_input")
            .expect("checked at load time");
        let run = instance
            .get_typed_func(&mut store, "weir_v1_transform")
            .expect("checked at load time");
        Ok(Instance {
            store,
            memory,
            input,
            run,
        })
    }

    /// Pushes the record into the guest and runs it, returning the guest's status; the answer
    /// is left in the store's output. An error means the guest did not return normally.
    fn run(&mut self, record: &Record) -> Result<i32, Failure> {
        self.instantiate()?;
        let limits = self.limits;
        let live = self.live.as_mut().expect("instantiated above");
        live.store
            .data_mut()
            .begin_record(record.arrival.unix_millis());
        live.store
            .set_fuel(limits.fuel_per_record)
            .expect("fuel is enabled on the engine");
        live.store
            .set_epoch_deadline(deadline_ticks(limits.deadline));

        let sequence = record.position.sequence_number().as_bytes();
        let parts = [
            record.data.as_slice(),
            record.partition_key.as_bytes(),
            sequence,
        ];
        let lens = parts.map(|p| i32::try_from(p.len()).unwrap_or(i32::MAX));
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let total = i32::try_from(total).map_err(|_| {
            Failure::new(
                ErrorType::InvalidRecord,
                "too_large",
                "record does not fit a 32-bit guest",
            )
        })?;
        let ptr = live
            .input
            .call(&mut live.store, total)
            .map_err(|e| classify(e, live.store.data()))?;
        if ptr == 0 {
            return Err(Failure::new(
                ErrorType::Trap,
                "input_buffer",
                format!("the guest could not allocate an input buffer of {total} bytes"),
            ));
        }
        let memory = live.memory.data_mut(&mut live.store);
        let buffer = super::guest::guest_slice_mut(memory, ptr, total)
            .map_err(|e| invalid_output("bad_pointer", e.to_string()))?;
        let mut at = 0;
        for part in parts {
            buffer[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        let args = (lens[0], lens[1], lens[2], record.arrival.unix_millis());
        live.run
            .call(&mut live.store, args)
            .map_err(|e| classify(e, live.store.data()))
    }
}

impl RecordTransform for WasmSession<'_> {
    fn table(&self) -> Option<&crate::lake::table::Table> {
        self.transform.table()
    }

    fn apply(&mut self, record: &Record) -> Result<&Output, Failure> {
        match &mut self.kind {
            Kind::Module(session) => session.apply(record),
            Kind::Component(session) => session.apply(record),
        }
    }

    fn apply_each(
        &mut self,
        records: &[&Record],
        each: &mut dyn FnMut(usize, Result<&Output, Failure>),
    ) {
        match &mut self.kind {
            Kind::Module(session) => {
                for (i, record) in records.iter().enumerate() {
                    each(i, session.apply(record));
                }
            }
            Kind::Component(session) => session.apply_each(records, each),
        }
    }
}

impl ModuleSession<'_> {
    fn apply(&mut self, record: &Record) -> Result<&Output, Failure> {
        match self.run(record) {
            Ok(status) => {
                let live = self
                    .live
                    .as_ref()
                    .expect("run returned, so an instance exists");
                let output = &live.store.data().output;
                check_answer(status, output).map(|()| output)
            }
            Err(failure) => {
                // The guest stopped mid-record, so its state is suspect: start afresh.
                self.live = None;
                Err(failure)
            }
        }
    }
}

/// The status must agree with what the guest reported through the imports.
pub(super) fn check_answer(status: i32, output: &Output) -> Result<(), Failure> {
    match status {
        ACCEPT if output.rejection().is_some() => Err(invalid_output(
            "inconsistent",
            "the guest accepted the record but also rejected it",
        )),
        ACCEPT if output.segment_count() == 0 => Err(invalid_output(
            "no_partition",
            "the guest accepted the record without a partition segment",
        )),
        REJECT if output.rejection().is_none() => Err(invalid_output(
            "inconsistent",
            "the guest rejected the record without a reason",
        )),
        ACCEPT | REJECT => Ok(()),
        other => Err(invalid_output(
            "bad_status",
            format!("the guest returned status {other}, expected 0 or 1"),
        )),
    }
}

fn invalid_output(code: &str, message: impl Into<String>) -> Failure {
    Failure::new(ErrorType::InvalidOutput, code, message)
}

/// Turns a wasmtime error into the record's failure reason.
pub(super) fn classify(error: wasmtime::Error, state: &GuestState) -> Failure {
    if let Some(host) = error.downcast_ref::<HostTrap>() {
        let (error_type, code) = match host {
            HostTrap::MemoryCap { .. } => (ErrorType::Trap, "memory_cap"),
            HostTrap::Exit(_) => (ErrorType::Trap, "exit"),
            HostTrap::EarlyCall => (ErrorType::Trap, "early_call"),
            HostTrap::OutputTooLarge { .. } => (ErrorType::InvalidOutput, "output_cap"),
            HostTrap::TooManySegments { .. } => (ErrorType::InvalidOutput, "too_many_segments"),
            HostTrap::OutOfBounds { .. } => (ErrorType::InvalidOutput, "bad_pointer"),
            HostTrap::Protocol(_) => (ErrorType::InvalidOutput, "protocol"),
        };
        return Failure::new(error_type, code, host.to_string());
    }
    if let Some(message) = &state.panic {
        return Failure::new(
            ErrorType::Trap,
            "panic",
            format!("the guest panicked: {message}"),
        );
    }
    let code = match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => "cpu_budget",
        Some(Trap::Interrupt) => "deadline",
        Some(Trap::StackOverflow) => "stack_overflow",
        Some(Trap::UnreachableCodeReached) => "unreachable",
        Some(Trap::MemoryOutOfBounds) => "out_of_bounds",
        _ => "trap",
    };
    let message = match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => "the record used up its CPU budget (fuel)".to_owned(),
        Some(Trap::Interrupt) => "the record ran past its wall-clock deadline".to_owned(),
        _ => format!("{error:#}"),
    };
    Failure::new(ErrorType::Trap, code, message)
}
