//! Large pages give their memory back to the system when the last response holding them is
//! gone.
//!
//! glibc keeps freed memory in its arenas, and after a large block is freed it raises its
//! mmap threshold, so the next page of the same size comes from an arena and stays there:
//! without a trim, a process that once served a 20 MB page keeps tens of MB it no longer uses.

use bytes::Bytes;

/// Pages at least this large are trimmed after.
const TRIM_ABOVE: usize = 1 << 20;

/// A page body that trims the allocator when dropped, if it was large.
struct Page(Vec<u8>);

impl AsRef<[u8]> for Page {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        let large = self.0.capacity() >= TRIM_ABOVE;
        drop(std::mem::take(&mut self.0));
        if large {
            release();
        }
    }
}

/// `body` as response bytes, shared without copying among every response that sends it.
pub(crate) fn page_bytes(body: String) -> Bytes {
    if body.len() < TRIM_ABOVE {
        return Bytes::from(body);
    }
    Bytes::from_owner(Page(body.into_bytes()))
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release() {
    // SAFETY: malloc_trim has no preconditions; it only returns free memory to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release() {}
