//! The gateway's A2A tasks, kept in memory so `GetTask`, `ListTasks` and
//! `CancelTask` can find them, and bounded so no client can grow it without
//! limit: at most [`MAX_TASKS`] tasks and [`MAX_BYTES`] of their JSON (and the ids kept beside it), the
//! oldest evicted first. A task that is alone larger than the byte bound is
//! answered but not kept. Every task this gateway creates is terminal at once
//! (completed or rejected), so a stored task never changes and "oldest" is
//! both the first created and the least recently updated.
//!
//! A task is kept as its JSON, with the few fields that `ListTasks` filters
//! by and `CancelTask` names beside it ([`Stored`]): `SendMessage` writes
//! that JSON for its answer anyway, and a task kept as one string is one
//! allocation to make and, once evicted, one to free, where the typed task
//! was some fifty (a tenth of the gateway's time under a load of
//! `SendMessage`s went to dropping evicted tasks). The rarer `GetTask` and
//! `ListTasks` read the JSON back for the view they ask for.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::value::RawValue;

use super::types::{Task, TaskState};

/// A kept task: its JSON (every field, all its history and artifacts), and
/// what the store's readers need without parsing it.
#[derive(Debug)]
pub struct Stored {
    pub id: String,
    pub context_id: String,
    pub state: TaskState,
    /// `status.timestamp`.
    pub timestamp: String,
    pub json: Box<str>,
}

impl Stored {
    /// The bytes it keeps, as the store's bound counts them.
    fn size(&self) -> usize {
        self.json.len() + self.id.len() + self.context_id.len() + self.timestamp.len()
    }

    /// `task` and its JSON, as [`serde_json::to_string`] writes it.
    pub fn new(task: &Task, json: String) -> Stored {
        Stored {
            id: task.id.clone(),
            context_id: task.context_id.clone(),
            state: task.status.state,
            timestamp: task.status.timestamp.clone(),
            json: json.into_boxed_str(),
        }
    }

    /// The task as a client asked for it (see [`Task::view`]), as the JSON
    /// `Task::view` would serialise to. Its members are copied as they were
    /// written, not parsed: a number reads back as the same text, and a
    /// task nested deeper than serde_json reads (a client's deep data,
    /// echoed a level down) is still shown.
    pub fn view(&self, history_length: Option<u32>, artifacts: bool) -> String {
        let Members(members) = serde_json::from_str(&self.json).expect("a kept task is an object");
        let mut out = String::with_capacity(self.json.len());
        for (key, raw) in members {
            let text = match key.as_str() {
                "artifacts" if !artifacts => continue,
                "history" => {
                    let items: Vec<&RawValue> =
                        serde_json::from_str(raw.get()).expect("a kept history is a list");
                    let keep = history_length.map_or(items.len(), |n| n as usize);
                    let kept = &items[items.len().saturating_sub(keep)..];
                    if kept.is_empty() {
                        continue;
                    }
                    let kept: Vec<&str> = kept.iter().map(|r| r.get()).collect();
                    format!("[{}]", kept.join(","))
                }
                _ => raw.get().to_string(),
            };
            out.push(if out.is_empty() { '{' } else { ',' });
            out.push_str(&serde_json::to_string(&key).expect("a key serialises"));
            out.push(':');
            out.push_str(&text);
        }
        if out.is_empty() {
            out.push('{');
        }
        out.push('}');
        out
    }
}

/// A JSON object's members in order, each value as its text.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for Members<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, &'de RawValue>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(Visit)
    }
}

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
    task: Arc<Stored>,
}

/// A page of [`TaskStore::list`]: newest first.
#[derive(Debug)]
pub struct Page {
    pub tasks: Vec<Arc<Stored>>,
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

    /// Keeps `task`, evicting the oldest tasks as the bounds require (its
    /// JSON and the fields kept beside it count against the byte bound).
    pub fn insert(&self, task: Stored) {
        let size = task.size();
        if size > self.max_bytes || self.max_tasks == 0 {
            return;
        }
        let mut inner = self.lock();
        while inner.order.len() >= self.max_tasks || inner.bytes + size > self.max_bytes {
            let Some((_, oldest)) = inner.order.pop_front() else {
                break;
            };
            if let Some(gone) = inner.by_id.remove(&oldest) {
                inner.bytes -= gone.task.size();
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
            },
        );
    }

    /// The task with this id, if it is kept.
    pub fn get(&self, id: &str) -> Option<Arc<Stored>> {
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
        keep: impl Fn(&Stored) -> bool,
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
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    // 8-4-4-4-12 hex digits, written in place (`format!` was most of the cost).
    let mut id = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            id.push('-');
        }
        id.push(char::from(HEX[usize::from(byte >> 4)]));
        id.push(char::from(HEX[usize::from(byte & 15)]));
    }
    id
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

    /// A task that counts `size` bytes (its JSON padded with spaces).
    fn sized(id: &str, state: TaskState, size: usize) -> Stored {
        let task = Task {
            id: id.to_string(),
            context_id: "c".to_string(),
            status: TaskStatus {
                state,
                message: None,
                timestamp: now_timestamp(),
            },
            artifacts: vec![],
            history: vec![],
        };
        let json = serde_json::to_string(&task).unwrap();
        let unpadded = Stored::new(&task, json.clone()).size();
        let pad = size.saturating_sub(unpadded);
        let stored = Stored::new(&task, format!("{json}{}", " ".repeat(pad)));
        assert!(size == 0 || stored.size() == size, "{size}");
        stored
    }

    fn task(id: &str, state: TaskState) -> Stored {
        sized(id, state, 0)
    }

    fn ids(page: &Page) -> Vec<&str> {
        page.tasks.iter().map(|t| t.id.as_str()).collect()
    }

    #[test]
    fn the_oldest_task_is_evicted_at_the_count_bound() {
        let store = TaskStore::new(3, 1 << 20);
        for id in ["a", "b", "c", "d"] {
            store.insert(task(id, TaskState::Completed));
        }
        assert_eq!(store.len(), 3);
        assert!(store.get("a").is_none());
        assert_eq!(store.get("d").unwrap().id, "d");
    }

    #[test]
    fn the_oldest_tasks_are_evicted_at_the_byte_bound_and_a_huge_one_is_not_kept() {
        let store = TaskStore::new(100, 350);
        store.insert(sized("a", TaskState::Completed, 150));
        store.insert(sized("b", TaskState::Completed, 150));
        store.insert(sized("c", TaskState::Completed, 150));
        assert!(store.get("a").is_none());
        assert!(store.get("b").is_some() && store.get("c").is_some());
        store.insert(sized("huge", TaskState::Completed, 351));
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
            store.insert(task(id, state));
        }
        let completed = |t: &Stored| t.state == TaskState::Completed;
        let first = store.list(completed, 2, "").unwrap();
        assert_eq!(ids(&first), ["d", "c"]);
        assert_eq!(first.total_size, 3);
        let second = store.list(completed, 2, &first.next_page_token).unwrap();
        assert_eq!(ids(&second), ["a"]);
        assert_eq!(second.next_page_token, "");
        assert!(store.list(completed, 2, "not-a-token").is_none());
    }

    #[test]
    fn a_kept_task_is_viewed_as_the_typed_task_would_be() {
        use super::super::types::{Artifact, Message, Part, Role};
        let msg = |id: &str| Message {
            message_id: id.into(),
            context_id: "c".into(),
            task_id: "t".into(),
            role: Role::User,
            parts: vec![Part::data(
                serde_json::json!({"z": 1, "a": [2, {"y": 3, "b": 4}]}),
            )],
            metadata: None,
            extensions: vec![],
            reference_task_ids: vec![],
        };
        let mut typed = Task {
            id: "t".into(),
            context_id: "c".into(),
            status: TaskStatus {
                state: TaskState::Completed,
                message: Some(msg("why")),
                timestamp: "2026-01-01T00:00:00.000Z".into(),
            },
            artifacts: vec![Artifact {
                artifact_id: "a1".into(),
                name: "result".into(),
                description: String::new(),
                parts: vec![Part::text("done")],
            }],
            history: vec![msg("m1"), msg("m2"), msg("m3")],
        };
        for artifacts in [false, true] {
            for history in [None, Some(0), Some(1), Some(2), Some(3), Some(9)] {
                let task = Stored::new(&typed, serde_json::to_string(&typed).unwrap());
                assert_eq!(
                    task.view(history, artifacts),
                    serde_json::to_string(&typed.view(history, artifacts)).unwrap(),
                    "{history:?} {artifacts}"
                );
            }
        }
        typed.artifacts.clear();
        typed.history.clear();
        let task = Stored::new(&typed, serde_json::to_string(&typed).unwrap());
        assert_eq!(
            task.view(Some(1), true),
            serde_json::to_string(&typed).unwrap()
        );
        assert_eq!(
            (task.state, task.context_id.as_str()),
            (TaskState::Completed, "c")
        );
    }

    /// A client's data deeper than serde_json reads back, and a number whose
    /// shortest form does not read back to the same float: the views show
    /// them as `SendMessage` answered them.
    #[test]
    fn a_deep_or_inexact_task_is_viewed_as_it_was_answered() {
        use super::super::types::{Message, Part, Role};
        let mut deep = serde_json::json!(1);
        for _ in 0..200 {
            deep = serde_json::json!([deep]);
        }
        let inexact: serde_json::Value = serde_json::from_str("30900594239637936e-32").unwrap();
        let typed = Task {
            id: "t".into(),
            context_id: "c".into(),
            status: TaskStatus {
                state: TaskState::Rejected,
                message: None,
                timestamp: "2026-01-01T00:00:00.000Z".into(),
            },
            artifacts: vec![],
            history: vec![Message {
                message_id: "m".into(),
                context_id: "c".into(),
                task_id: "t".into(),
                role: Role::User,
                parts: vec![Part::data(serde_json::json!({"deep": deep, "x": inexact}))],
                metadata: None,
                extensions: vec![],
                reference_task_ids: vec![],
            }],
        };
        let json = serde_json::to_string(&typed).unwrap();
        assert!(
            serde_json::from_str::<serde_json::Value>(&json).is_err(),
            "too deep to parse"
        );
        let task = Stored::new(&typed, json.clone());
        assert_eq!(task.view(Some(1), false), json);
        assert_eq!(
            task.view(Some(0), false),
            serde_json::to_string(&typed.view(Some(0), false)).unwrap()
        );
    }

    #[test]
    fn ids_are_version_4_uuids_and_distinct() {
        let a = new_id();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!("89ab".contains(&a[19..20]));
        for (i, c) in a.char_indices() {
            match i {
                8 | 13 | 18 | 23 => assert_eq!(c, '-', "{a}"),
                _ => assert!(c.is_ascii_hexdigit() && !c.is_ascii_uppercase(), "{a}"),
            }
        }
        assert_ne!(a, new_id());
    }
}
