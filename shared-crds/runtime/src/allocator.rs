//! The operators' memory allocator: jemalloc for every allocation (Rust's and, since `malloc`
//! itself is replaced, librdkafka's and OpenSSL's), set to give freed memory back to the system
//! within about a second. Binaries install it with [`crate::use_jemalloc!`]. Touches nothing
//! at run time beyond what jemalloc reads once before `main`.

/// jemalloc's options, read before `main` through the `malloc_conf` symbol that
/// [`crate::use_jemalloc!`] exports; the `MALLOC_CONF` environment variable, read after it,
/// still overrides any of them.
///
/// - `background_thread:true`: a background thread returns freed pages, so idle operators
///   shrink without allocating.
/// - `narenas:2`: two arenas instead of four per core; the operators have a handful of busy
///   threads, and each arena keeps its own free pages.
/// - `dirty_decay_ms:1000`: freed pages go back after about a second (jemalloc's default, 10 s,
///   held a 10,000-topic pass's garbage while the next pass allocated its own).
/// - `muzzy_decay_ms:0`: pages are returned with `MADV_DONTNEED` at once, not first with
///   `MADV_FREE`, whose pages still count in the RSS until the kernel needs them.
///
/// A C string: the exported symbol points at its first byte.
pub const OPTIONS: &[u8] =
    b"background_thread:true,narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

/// Installs jemalloc as the global allocator of the binary that calls it (once, at the crate
/// root) and exports [`OPTIONS`] as jemalloc's `malloc_conf`. The binary must depend on
/// `tikv-jemallocator` with the `override_allocator_on_supported_platforms` feature (see the
/// workspace `Cargo.toml`); libraries and test tools that do not call this keep the system
/// allocator.
#[macro_export]
macro_rules! use_jemalloc {
    () => {
        #[global_allocator]
        static ALLOCATOR: ::tikv_jemallocator::Jemalloc = ::tikv_jemallocator::Jemalloc;

        /// jemalloc's options (`oxbow_runtime::allocator::OPTIONS`): jemalloc reads the C symbol
        /// `malloc_conf`, a `const char *`, before `main`.
        #[allow(unsafe_code)]
        #[unsafe(export_name = "malloc_conf")]
        static MALLOC_CONF: Option<&'static u8> = Some(&$crate::allocator::OPTIONS[0]);
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_one_nul_terminated_c_string_of_known_keys() {
        let (last, text) = OPTIONS.split_last().unwrap();
        assert_eq!(*last, 0, "NUL-terminated");
        assert!(!text.contains(&0), "one string");
        let text = std::str::from_utf8(text).unwrap();
        for option in text.split(',') {
            let (key, value) = option.split_once(':').expect("key:value");
            assert!(
                [
                    "background_thread",
                    "narenas",
                    "dirty_decay_ms",
                    "muzzy_decay_ms"
                ]
                .contains(&key),
                "{key}"
            );
            assert!(!value.is_empty(), "{key}");
        }
    }
}
