//! Reads arbitrary bytes as a npy file, as the commands do: an error is fine, a panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use likely::data::fuzz::{read_bytes, Reader};

fuzz_target!(|data: &[u8]| read_bytes(Reader::Npy, data));
