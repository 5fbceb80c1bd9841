//! Connections kept open between requests: opening one costs a handshake (and, on PostgreSQL,
//! a round trip per migration check) that a request should not pay each time.

use std::sync::{Arc, Mutex};

use crate::{Location, Store, StoreError};

/// Open connections to one store, handed out one per user and taken back when dropped.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    location: Location,
    idle: Mutex<Vec<Store>>,
    max_idle: usize,
}

impl Pool {
    /// A pool of connections to `location`, keeping at most `max_idle` open while unused.
    pub fn new(location: Location, max_idle: usize) -> Pool {
        Pool { inner: Arc::new(Inner { location, idle: Mutex::new(Vec::new()), max_idle }) }
    }

    /// Where its connections go.
    pub fn location(&self) -> &Location {
        &self.inner.location
    }

    /// A connection of the caller's own until dropped: an idle one, or a new one.
    pub fn get(&self) -> Result<Pooled, StoreError> {
        let idle = self.inner.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let store = match idle {
            Some(store) => store,
            None => Store::open_at(&self.inner.location)?,
        };
        Ok(Pooled { store: Some(store), pool: Arc::clone(&self.inner) })
    }
}

/// A pooled connection; derefs to [`Store`].
pub struct Pooled {
    store: Option<Store>,
    pool: Arc<Inner>,
}

impl std::ops::Deref for Pooled {
    type Target = Store;

    fn deref(&self) -> &Store {
        self.store.as_ref().expect("a pooled store is there until it is dropped")
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Store {
        self.store.as_mut().expect("a pooled store is there until it is dropped")
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        // A connection the server closed (or a database that went away) is not kept.
        let Some(store) = self.store.take().filter(Store::is_open) else { return };
        let mut idle = self.pool.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.pool.max_idle {
            idle.push(store);
        }
    }
}
