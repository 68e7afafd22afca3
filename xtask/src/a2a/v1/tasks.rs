//! The gateway's A2A tasks, kept in memory so `GetTask`, `ListTasks` and
//! `CancelTask` can find them, and bounded so no client can grow it without
//! limit: at most [`MAX_TASKS`] tasks and [`MAX_BYTES`] of their JSON, the
//! oldest evicted first. A task that is alone larger than the byte bound is
//! answered but not kept. Every task this gateway creates is terminal at once
//! (completed or rejected), so a stored task never changes and "oldest" is
//! both the first created and the least recently updated.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::types::Task;

/// The most tasks kept.
pub const MAX_TASKS: usize = 1000;
/// The most bytes of task JSON kept: 32 MiB.
pub const MAX_BYTES: usize = 32 << 20;

/// A bounded, thread-safe task store.
#[derive(Debug)]
pub struct TaskStore {
    inner: Mutex<Inner>,
    max_tasks: usize,
    max_bytes: usize,
}

#[derive(Debug, Default)]
struct Inner {
    by_id: HashMap<String, Entry>,
    /// `(sequence, id)` in creation order, oldest first.
    order: VecDeque<(u64, String)>,
    bytes: usize,
    next_seq: u64,
}

#[derive(Debug)]
struct Entry {
    task: Arc<Task>,
    size: usize,
}

/// A page of [`TaskStore::list`]: newest first.
#[derive(Debug)]
pub struct Page {
    pub tasks: Vec<Arc<Task>>,
    /// The token of the next page, empty when this is the last.
    pub next_page_token: String,
    /// How many tasks match the filter in all.
    pub total_size: usize,
}

impl TaskStore {
    pub fn new(max_tasks: usize, max_bytes: usize) -> TaskStore {
        TaskStore {
            inner: Mutex::new(Inner::default()),
            max_tasks,
            max_bytes,
        }
    }

    /// Keeps `task` (whose JSON is `size` bytes), evicting the oldest tasks
    /// as the bounds require.
    pub fn insert(&self, task: Task, size: usize) {
        if size > self.max_bytes || self.max_tasks == 0 {
            return;
        }
        let mut inner = self.lock();
        while inner.order.len() >= self.max_tasks || inner.bytes + size > self.max_bytes {
            let Some((_, oldest)) = inner.order.pop_front() else {
                break;
            };
            if let Some(gone) = inner.by_id.remove(&oldest) {
                inner.bytes -= gone.size;
            }
        }
        let seq = inner.next_seq;
        inner.next_seq += 1;
        inner.order.push_back((seq, task.id.clone()));
        inner.bytes += size;
        inner.by_id.insert(
            task.id.clone(),
            Entry {
                task: Arc::new(task),
                size,
            },
        );
    }

    /// The task with this id, if it is kept.
    pub fn get(&self, id: &str) -> Option<Arc<Task>> {
        self.lock().by_id.get(id).map(|e| e.task.clone())
    }

    /// How many tasks are kept.
    pub fn len(&self) -> usize {
        self.lock().order.len()
    }

    /// Whether no task is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tasks matching `keep`, newest first, `page_size` at most, starting
    /// after the page `token` names (`""`: the first page). `None` when the
    /// token is not one this store gave out.
    pub fn list(
        &self,
        keep: impl Fn(&Task) -> bool,
        page_size: usize,
        token: &str,
    ) -> Option<Page> {
        // A token is the sequence number of the first task of its page.
        let start = if token.is_empty() {
            u64::MAX
        } else {
            token.parse::<u64>().ok()?
        };
        let inner = self.lock();
        let mut tasks = Vec::new();
        let mut total_size = 0;
        let mut next_page_token = String::new();
        for (seq, id) in inner.order.iter().rev() {
            let Some(entry) = inner.by_id.get(id) else {
                continue;
            };
            if !keep(&entry.task) {
                continue;
            }
            total_size += 1;
            if *seq > start {
                continue;
            }
            if tasks.len() < page_size {
                tasks.push(entry.task.clone());
            } else if next_page_token.is_empty() {
                next_page_token = seq.to_string();
            }
        }
        Some(Page {
            tasks,
            next_page_token,
            total_size,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A random (version 4) UUID, the protocol's suggested id form.
pub fn new_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = crate::util::hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Now as RFC 3339 UTC with milliseconds (`2026-12-03T16:20:13.123Z`), the
/// form the specification recommends for timestamps.
pub fn now_timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = crate::util::rfc3339(now.as_secs());
    format!("{}.{:03}Z", &secs[..secs.len() - 1], now.subsec_millis())
}

#[cfg(test)]
mod tests {
    use super::super::types::{TaskState, TaskStatus};
    use super::*;

    fn task(id: &str, state: TaskState) -> Task {
        Task {
            id: id.to_string(),
            context_id: "c".to_string(),
            status: TaskStatus {
                state,
                message: None,
                timestamp: now_timestamp(),
            },
            artifacts: vec![],
            history: vec![],
        }
    }

    fn ids(page: &Page) -> Vec<&str> {
        page.tasks.iter().map(|t| t.id.as_str()).collect()
    }

    #[test]
    fn the_oldest_task_is_evicted_at_the_count_bound() {
        let store = TaskStore::new(3, 1 << 20);
        for id in ["a", "b", "c", "d"] {
            store.insert(task(id, TaskState::Completed), 10);
        }
        assert_eq!(store.len(), 3);
        assert!(store.get("a").is_none());
        assert_eq!(store.get("d").unwrap().id, "d");
    }

    #[test]
    fn the_oldest_tasks_are_evicted_at_the_byte_bound_and_a_huge_one_is_not_kept() {
        let store = TaskStore::new(100, 100);
        store.insert(task("a", TaskState::Completed), 40);
        store.insert(task("b", TaskState::Completed), 40);
        store.insert(task("c", TaskState::Completed), 40);
        assert!(store.get("a").is_none());
        assert!(store.get("b").is_some() && store.get("c").is_some());
        store.insert(task("huge", TaskState::Completed), 101);
        assert!(store.get("huge").is_none());
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn list_pages_newest_first_with_a_filter_and_tokens() {
        let store = TaskStore::new(100, 1 << 20);
        for (id, state) in [
            ("a", TaskState::Completed),
            ("b", TaskState::Rejected),
            ("c", TaskState::Completed),
            ("d", TaskState::Completed),
        ] {
            store.insert(task(id, state), 10);
        }
        let completed = |t: &Task| t.status.state == TaskState::Completed;
        let first = store.list(completed, 2, "").unwrap();
        assert_eq!(ids(&first), ["d", "c"]);
        assert_eq!(first.total_size, 3);
        let second = store.list(completed, 2, &first.next_page_token).unwrap();
        assert_eq!(ids(&second), ["a"]);
        assert_eq!(second.next_page_token, "");
        assert!(store.list(completed, 2, "not-a-token").is_none());
    }

    #[test]
    fn ids_are_version_4_uuids_and_distinct() {
        let a = new_id();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!("89ab".contains(&a[19..20]));
        assert_ne!(a, new_id());
    }
}
