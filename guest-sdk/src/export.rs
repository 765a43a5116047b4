//! The one-line export of a transform function.

/// Exports a transform function as a Weir guest: `weir_guest_sdk::export!(transform);`.
///
/// The function has the signature `fn(&Record<'_>) -> Outcome`. On `wasm32` targets this
/// expands to the ABI's entry points (`weir_v1_init`, `weir_v1_input`, `weir_v1_transform`),
/// which call it once per record; elsewhere it expands to nothing but a check of the function's
/// signature, so `cargo test` calls the function like any other.
///
/// Use it once per crate, in a crate built as a `cdylib` (add `rlib` too, so that tests and
/// other crates can call the function).
#[macro_export]
macro_rules! export {
    ($transform:path) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            #[unsafe(no_mangle)]
            extern "C" fn weir_v1_init() {
                $crate::__abi::init()
            }

            #[unsafe(no_mangle)]
            extern "C" fn weir_v1_input(len: i32) -> i32 {
                $crate::__abi::input(len)
            }

            #[unsafe(no_mangle)]
            extern "C" fn weir_v1_transform(
                data_len: i32,
                key_len: i32,
                seq_len: i32,
                arrival_ms: i64,
            ) -> i32 {
                $crate::__abi::transform(data_len, key_len, seq_len, arrival_ms, $transform)
            }
        };

        // Natively, refer to the function anyway: a wrong signature fails `cargo test` rather
        // than only the wasm build, and a private function is not reported as unused.
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn(&$crate::Record<'_>) -> $crate::Outcome = $transform;
    };
}
