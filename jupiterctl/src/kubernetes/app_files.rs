//! The app folder as one ConfigMap, mounted at `/app` in circe-home and every
//! circe-worker. ConfigMap keys cannot hold '/', so each file's relative path
//! is escaped into a key and the volume's `items` put it back at its path.

use super::names::{self, APP_CONFIG_MAP};
use super::KubeError;
use jupiter_common::app::App;
use k8s_openapi::api::core::v1::{ConfigMap, KeyToPath};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A ConfigMap is stored whole in etcd, whose objects stop at 1 MiB; the rest
/// is left for metadata and the apply bookkeeping.
pub const MAX_APP_BYTES: u64 = 900 * 1024;
/// Longest ConfigMap key Kubernetes accepts.
const MAX_KEY: usize = 253;
/// Inputs go through `jupiterctl submit`/`run`, not the pods' app folder.
const SKIPPED_DIRS: &[&str] = &["sample_input"];

/// The ConfigMap and the `items` of the volume that mounts it.
pub struct AppFiles {
    pub config_map: ConfigMap,
    pub items: Vec<KeyToPath>,
}

/// Reads the app folder into a ConfigMap of `namespace`. Refuses apps over
/// [`MAX_APP_BYTES`]; skips (with a warning) hidden entries and files whose
/// path cannot be a key.
pub fn app_files(app: &App, deployment: &str, namespace: &str) -> Result<AppFiles, KubeError> {
    let mut files = Vec::new();
    collect(&app.dir, Path::new(""), &mut files)?;
    let mut data = BTreeMap::new();
    let mut binary = BTreeMap::new();
    let mut items = Vec::new();
    let mut size = 0u64;
    for (relative, full) in files {
        let Some(path) = relative.to_str() else {
            tracing::warn!(file = %full.display(), "not shipped to Kubernetes: the name is not UTF-8");
            continue;
        };
        let key = encode_key(path);
        if key.len() > MAX_KEY {
            tracing::warn!(file = %full.display(), "not shipped to Kubernetes: path too long for a ConfigMap key");
            continue;
        }
        let bytes = std::fs::read(&full).map_err(|source| KubeError::AppRead {
            path: full.clone(),
            source,
        })?;
        size += key.len() as u64;
        match String::from_utf8(bytes) {
            Ok(text) => {
                size += text.len() as u64;
                data.insert(key.clone(), text);
            }
            Err(e) => {
                // binaryData is base64 in the stored object.
                size += (e.as_bytes().len() as u64).div_ceil(3) * 4;
                binary.insert(key.clone(), ByteString(e.into_bytes()));
            }
        }
        items.push(KeyToPath {
            key,
            path: path.to_string(),
            mode: Some(if is_executable(&full) { 0o755 } else { 0o644 }),
        });
    }
    if size > MAX_APP_BYTES {
        return Err(KubeError::AppTooLarge {
            dir: app.dir.clone(),
            size,
            limit: MAX_APP_BYTES,
        });
    }
    let config_map = ConfigMap {
        metadata: ObjectMeta {
            name: Some(APP_CONFIG_MAP.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(names::labels(deployment, "app")),
            ..Default::default()
        },
        data: Some(data),
        binary_data: (!binary.is_empty()).then_some(binary),
        ..Default::default()
    };
    Ok(AppFiles { config_map, items })
}

/// Every regular file under `dir`, as (path relative to the app, full path),
/// sorted so the ConfigMap is the same on every render.
fn collect(dir: &Path, relative: &Path, out: &mut Vec<(PathBuf, PathBuf)>) -> Result<(), KubeError> {
    let read_err = |source| KubeError::AppRead {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries = std::fs::read_dir(dir)
        .map_err(read_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_err)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let hidden = name.to_string_lossy().starts_with('.');
        let skipped = relative.as_os_str().is_empty() && SKIPPED_DIRS.iter().any(|d| name == *d);
        if hidden || skipped {
            continue;
        }
        let full = entry.path();
        let rel = relative.join(&name);
        // symlink_metadata: a link to a folder is not followed (no loops);
        // a link to a file ships the file.
        let meta = std::fs::symlink_metadata(&full).map_err(|source| KubeError::AppRead {
            path: full.clone(),
            source,
        })?;
        if meta.is_dir() {
            collect(&full, &rel, out)?;
        } else if meta.is_file() || full.is_file() {
            out.push((rel, full));
        }
    }
    Ok(())
}

/// Escapes a relative path into a ConfigMap key (`[-._a-zA-Z0-9]+`),
/// one-to-one: `_` -> `__`, `/` -> `_.`, any other byte outside the set ->
/// `_` and two hex digits. `scripts/task0.py` -> `scripts_.task0.py`.
pub fn encode_key(path: &str) -> String {
    let mut key = String::with_capacity(path.len());
    for b in path.bytes() {
        match b {
            b'_' => key.push_str("__"),
            b'/' => key.push_str("_."),
            b'-' | b'.' | b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => key.push(b as char),
            other => key.push_str(&format!("_{other:02x}")),
        }
    }
    key
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(_: &Path) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::encode_key;

    #[test]
    fn keys_are_valid_and_distinct() {
        assert_eq!(encode_key("scripts/task0.py"), "scripts_.task0.py");
        assert_eq!(encode_key("a_b"), "a__b");
        assert_eq!(encode_key("a b"), "a_20b");
        // These would collide under a naive '/' -> '_' or '/' -> '.'.
        let keys = ["a/b", "a_b", "a.b", "a_.b", "a__b"].map(encode_key);
        let distinct: std::collections::BTreeSet<_> = keys.iter().collect();
        assert_eq!(distinct.len(), keys.len());
        assert!(keys
            .iter()
            .all(|k| k.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))));
    }
}
