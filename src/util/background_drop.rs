//! Freeing large, short-lived structures off the caller's path.

/// Drops `value` on a thread of its own, so that the caller does not wait for it: freeing the
/// tens of thousands of small allocations of a GC's mark (its index snapshot and marked set)
/// took about 25 ms, after the GC had nothing left to decide. A process that exits meanwhile
/// leaves the freeing to the OS.
pub fn drop_in_background<T: Send + 'static>(value: T) {
    // If no thread can be started, the closure, and the value with it, is dropped here.
    let _ = std::thread::Builder::new()
        .name("oci-store-free".to_string())
        .spawn(move || drop(value));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::thread::ThreadId;

    /// Says on which thread it was dropped.
    struct Reports(mpsc::Sender<ThreadId>);

    impl Drop for Reports {
        fn drop(&mut self) {
            let _ = self.0.send(std::thread::current().id());
        }
    }

    #[test]
    fn the_value_is_dropped_on_another_thread() {
        let (sender, receiver) = mpsc::channel();
        drop_in_background(Reports(sender));
        let dropped_on = receiver
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the value was dropped");
        assert_ne!(dropped_on, std::thread::current().id());
    }
}
