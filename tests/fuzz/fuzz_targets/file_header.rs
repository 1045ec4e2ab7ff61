//! A pushed file's header, as bytes off the wire: decoded or refused, then
//! checked (names, counts, sizes) as a worker does; never a panic, and a
//! header that passes names only safe path components.
#![no_main]

use jupiter_common::limits::Limits;
use jupiter_common::proto::circe::worker::v1::FileHeader;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = FileHeader::decode(data) else {
        return;
    };
    if jupiter_common::transfer::check_header(&header).is_err() {
        return;
    }
    if Limits::DEFAULT
        .check_header(header.file_count, header.size)
        .is_err()
    {
        return;
    }
    for name in [&header.input_id, &header.file_name, &header.from_task] {
        assert!(
            !name.contains('/') && name != ".." && name.len() <= 255,
            "{name:?} passed"
        );
    }
});
