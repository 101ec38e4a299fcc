//! Pinning capture and shard threads to cores.

use std::io;

/// Pins the calling thread to one core (best effort: logged when refused).
pub fn pin(core: usize) {
    if core >= libc::CPU_SETSIZE as usize {
        tracing::warn!(core, "cannot pin thread to core: beyond CPU_SETSIZE");
        return;
    }
    // SAFETY: cpu_set_t is plain data (all zeroes is the empty set); CPU_SET sets a bit of a core
    // checked to be inside it; sched_setaffinity only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            tracing::warn!(core, "cannot pin thread to core: {}", io::Error::last_os_error());
        }
    }
}
