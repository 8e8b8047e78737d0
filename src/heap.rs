//! Handing freed heap back to the OS: after start-up, after each sweep, and after each
//! password hash (argon2 takes a 19 MiB buffer per hash, which would otherwise stay resident).

/// Hands freed heap back to the OS. The `reflow` binary allocates with mimalloc, which purges freed pages on its own but keeps what start-up
/// (migrations, config) freed until asked; glibc malloc (the tests' allocator) keeps freed
/// arenas (sessions, closed connections, argon2's 19 MiB buffers) mapped, so RSS would only
/// ever grow. Each call is a no-op for the allocator not in use.
pub fn release_free_memory() {
    // SAFETY: mi_collect only frees mimalloc's own unused pages; with nothing allocated through
    // it (the tests), it has nothing to do.
    unsafe { libmimalloc_sys::mi_collect(true) };
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's own arenas to the OS.
    unsafe {
        libc::malloc_trim(0);
    }
}
