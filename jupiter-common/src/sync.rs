//! Locking shared state the one way Jupiter does it.

use std::sync::{Mutex, MutexGuard};

/// `lock()` that outlives a panic. A lock is poisoned when a holder
/// panicked; every critical section in Jupiter leaves its data whole at
/// each step (counters, maps, a cached value), so the data is still good,
/// and refusing it would turn one failed call into a dead server.
pub trait LockExt<T> {
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T> LockExt<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::LockExt;
    use std::sync::{Arc, Mutex};

    #[test]
    fn a_poisoned_lock_still_gives_its_data() {
        let shared = Arc::new(Mutex::new(1));
        let clone = shared.clone();
        let _ = std::thread::spawn(move || {
            let _guard = clone.locked();
            panic!("holder panics");
        })
        .join();
        assert!(shared.is_poisoned());
        *shared.locked() += 1;
        assert_eq!(*shared.locked(), 2);
    }
}
