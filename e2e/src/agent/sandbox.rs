//! One container's root and the script that starts it: the host's base system (`/usr`, `/etc`,
//! `/dev`, `/proc`, `/sys`, read-only), the image root laid over it, the pod's hosts file and
//! volumes at their mount paths, then `chroot` as the container's user with exactly its
//! environment. The script runs inside the pod's network namespace and a private mount and UTS
//! namespace, so nothing it mounts is seen outside. May touch: files under the container's root
//! folder (building it); the script itself only mounts inside its own namespace.

use std::{
    collections::BTreeMap,
    os::unix::fs::{PermissionsExt, symlink},
    path::{Component, Path, PathBuf},
};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// Where the image root is mounted inside every container root.
const IMAGE_MOUNT: &str = "/.oxbow-image";
/// Where the host's `/etc` is mounted inside every container root; the root's own `/etc` is a
/// folder of symlinks into it, so that volumes can be mounted below `/etc` and the pod's hosts
/// file replaces `/etc/hosts`.
const ETC_MOUNT: &str = "/.oxbow-etc";
/// Host folders every container sees, bind-mounted (`usr` read-only).
const HOST_DIRS: [&str; 4] = ["usr", "dev", "proc", "sys"];
/// Host top-level entries that are symlinks on merged-/usr systems (or folders elsewhere).
const HOST_LINKS: [&str; 4] = ["bin", "lib", "lib64", "sbin"];

/// An image as a local folder: `<root>/image.json` holds what the image's config would.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    #[serde(skip)]
    pub root: PathBuf,
    /// `NAME=value` lines.
    #[serde(default)]
    pub env: Vec<String>,
    /// The image's numeric user.
    pub user: Option<i64>,
    pub working_dir: Option<String>,
    /// The image's entrypoint, used when the container has no `command`.
    #[serde(default)]
    pub entrypoint: Vec<String>,
}

/// Finds the local root of `reference` among the agent's images.
pub fn image(images: &BTreeMap<String, PathBuf>, reference: &str) -> Result<Image, String> {
    let root = images.get(reference).ok_or_else(|| {
        format!(
            "image {reference:?} is not available on this testbed node (it has: {})",
            images.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    })?;
    let config = root.join("image.json");
    let mut image: Image = match std::fs::read_to_string(&config) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| format!("image {reference:?}: {}: {e}", config.display()))?,
        Err(_) => Image::default(),
    };
    image.root = root.clone();
    Ok(image)
}

/// A bind mount into the container: host `source` at `target` (absolute, inside the container).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub source: PathBuf,
    pub target: String,
    pub read_only: bool,
}

/// Everything needed to start one container.
#[derive(Clone, Debug)]
pub struct Launch {
    pub netns: String,
    /// The container's root folder (built by [`prepare_root`]).
    pub root: PathBuf,
    pub image: PathBuf,
    pub hosts: PathBuf,
    pub mounts: Vec<Mount>,
    pub read_only_root: bool,
    pub hostname: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub env: BTreeMap<String, String>,
    pub working_dir: String,
    pub argv: Vec<String>,
}

/// Quotes a word for a POSIX shell. Pure.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Builds the container's root folder (mount points, symlinks into the image) and returns the
/// image folders that must be bind-mounted over host folders (an image adding files to
/// `/usr/local/bin`, say), as (image folder, container path).
pub fn prepare_root(launch: &Launch) -> Result<Vec<(PathBuf, String)>> {
    let root = &launch.root;
    if root.exists() {
        std::fs::remove_dir_all(root)
            .with_context(|| format!("clearing old container root {}", root.display()))?;
    }
    std::fs::create_dir_all(root)?;
    for dir in HOST_DIRS {
        std::fs::create_dir_all(root.join(dir))?;
    }
    for link in HOST_LINKS {
        let host = Path::new("/").join(link);
        match std::fs::read_link(&host) {
            Ok(target) => symlink(target, root.join(link))?,
            Err(_) if host.is_dir() => std::fs::create_dir_all(root.join(link))?,
            Err(_) => {}
        }
    }
    std::fs::create_dir_all(root.join(&IMAGE_MOUNT[1..]))?;
    std::fs::create_dir_all(root.join(&ETC_MOUNT[1..]))?;
    std::fs::create_dir_all(root.join("etc"))?;
    for e in std::fs::read_dir("/etc")?.flatten() {
        let name = e.file_name();
        if name == "hosts" {
            std::fs::write(root.join("etc/hosts"), b"")?;
        } else {
            symlink(
                Path::new(ETC_MOUNT).join(&name),
                root.join("etc").join(&name),
            )?;
        }
    }
    let tmp = root.join("tmp");
    std::fs::create_dir_all(&tmp)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777))?;

    let mut overlays = Vec::new();
    for entry in std::fs::read_dir(&launch.image)
        .with_context(|| format!("reading image root {}", launch.image.display()))?
    {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "image.json" {
            continue;
        }
        if HOST_DIRS.contains(&name.as_str()) || HOST_LINKS.contains(&name.as_str()) {
            overlay(&entry.path(), &format!("/{name}"), &mut overlays)?;
        } else {
            symlink(format!("{IMAGE_MOUNT}/{name}"), root.join(&name))?;
        }
    }
    let mut mounts = launch.mounts.clone();
    mounts.sort_by_key(|m| m.target.matches('/').count());
    let links = [
        (IMAGE_MOUNT, launch.image.clone()),
        (ETC_MOUNT, PathBuf::from("/etc")),
    ];
    for m in &mounts {
        materialise(root, &links, &m.target, m.source.is_file(), &overlays)?;
    }
    Ok(overlays)
}

/// Lays image folder `image_dir` over container path `path` (a host folder): where the image
/// only adds to sub-folders the host also has, recurse; otherwise bind the whole folder.
fn overlay(image_dir: &Path, path: &str, out: &mut Vec<(PathBuf, String)>) -> Result<()> {
    let entries: Vec<_> = std::fs::read_dir(image_dir)?.flatten().collect();
    let host = Path::new(path);
    let recursable = entries.iter().all(|e| {
        e.path().is_dir()
            && host.join(e.file_name()).is_dir()
            && !host.join(e.file_name()).is_symlink()
    });
    if !host.is_dir() {
        bail!("image folder {path} has no host folder to lay over");
    }
    if recursable {
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            overlay(&e.path(), &format!("{path}/{name}"), out)?;
        }
    } else {
        out.push((image_dir.to_path_buf(), path.to_owned()));
    }
    Ok(())
}

/// Makes `target` exist in the root as a mount point: folders are created in the root, and a
/// symlink into the image (or the host's `/etc`) on the way is replaced by a real folder of
/// symlinks to its entries. `links` maps such a symlink prefix to the folder it stands for.
fn materialise(
    root: &Path,
    links: &[(&str, PathBuf)],
    target: &str,
    file: bool,
    overlays: &[(PathBuf, String)],
) -> Result<()> {
    let rel = Path::new(target)
        .strip_prefix("/")
        .with_context(|| format!("mount path {target:?} is not absolute"))?;
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        bail!("mount path {target:?} must not contain '..' or '.'");
    }
    let first = rel
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default();
    if HOST_DIRS.contains(&first.as_str()) || HOST_LINKS.contains(&first.as_str()) {
        // Inside a read-only host folder: the mount point must already exist there.
        let inside_overlay = overlays.iter().any(|(_, p)| target.starts_with(p.as_str()));
        if !Path::new(target).exists() && !inside_overlay {
            bail!(
                "mount path {target} lies inside the host's /{first} and does not exist there; the testbed node agent cannot create it"
            );
        }
        return Ok(());
    }
    let mut here = root.to_path_buf();
    let count = rel.components().count();
    for (i, c) in rel.components().enumerate() {
        here.push(c);
        let last = i + 1 == count;
        match std::fs::symlink_metadata(&here) {
            Err(_) if last && file => {
                std::fs::write(&here, b"")?;
            }
            Err(_) => std::fs::create_dir(&here)?,
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = std::fs::read_link(&here)?;
                let source = links
                    .iter()
                    .find_map(|(prefix, dir)| Some(dir.join(link.strip_prefix(prefix).ok()?)))
                    .with_context(|| {
                        format!("mount path {target} crosses symlink {}", here.display())
                    })?;
                std::fs::remove_file(&here)?;
                if source.is_dir() {
                    std::fs::create_dir(&here)?;
                    for e in std::fs::read_dir(&source)?.flatten() {
                        symlink(link.join(e.file_name()), here.join(e.file_name()))?;
                    }
                } else if last && file {
                    std::fs::write(&here, b"")?;
                } else {
                    std::fs::create_dir(&here)?;
                }
            }
            Ok(_) => {}
        }
    }
    Ok(())
}

/// The script that mounts everything and `exec`s the container's process. Pure.
pub fn script(launch: &Launch, overlays: &[(PathBuf, String)]) -> String {
    let r = quote(&launch.root.display().to_string());
    let mut s = String::from("set -e\n");
    s.push_str(&format!("R={r}\nmount --bind \"$R\" \"$R\"\n"));
    for dir in HOST_DIRS {
        s.push_str(&format!("mount --rbind /{dir} \"$R/{dir}\"\n"));
        if dir == "usr" {
            s.push_str(&format!("mount -o remount,bind,ro \"$R/{dir}\"\n"));
        }
    }
    for link in HOST_LINKS {
        let host = Path::new("/").join(link);
        if host.is_dir() && !host.is_symlink() {
            s.push_str(&format!("mount --rbind /{link} \"$R/{link}\"\n"));
        }
    }
    let bind_ro = |s: &mut String, source: &Path, target: &str| {
        let source = quote(&source.display().to_string());
        let target = quote(target);
        s.push_str(&format!("mount --bind {source} \"$R\"{target}\n"));
        s.push_str(&format!("mount -o remount,bind,ro \"$R\"{target}\n"));
    };
    bind_ro(&mut s, &launch.image, IMAGE_MOUNT);
    bind_ro(&mut s, Path::new("/etc"), ETC_MOUNT);
    for (source, target) in overlays {
        bind_ro(&mut s, source, target);
    }
    s.push_str(&format!(
        "mount --bind {} \"$R/etc/hosts\"\n",
        quote(&launch.hosts.display().to_string())
    ));
    let mut mounts = launch.mounts.clone();
    mounts.sort_by_key(|m| m.target.matches('/').count());
    for m in &mounts {
        if m.read_only {
            bind_ro(&mut s, &m.source, &m.target);
        } else {
            s.push_str(&format!(
                "mount --bind {} \"$R\"{}\n",
                quote(&m.source.display().to_string()),
                quote(&m.target)
            ));
        }
    }
    if launch.read_only_root {
        s.push_str("mount -o remount,bind,ro \"$R\"\n");
    }
    s.push_str(&format!("hostname {}\n", quote(&launch.hostname)));
    let mut cmd = vec![
        "exec".to_owned(),
        "chroot".to_owned(),
        format!("--userspec={}:{}", launch.uid, launch.gid),
    ];
    if !launch.groups.is_empty() {
        let groups: Vec<String> = launch.groups.iter().map(u32::to_string).collect();
        cmd.push(format!("--groups={}", groups.join(",")));
    }
    cmd.push("\"$R\"".to_owned());
    cmd.push("/usr/bin/env".to_owned());
    cmd.push("-i".to_owned());
    for (k, v) in &launch.env {
        cmd.push(quote(&format!("{k}={v}")));
    }
    cmd.push("/bin/sh".to_owned());
    cmd.push("-c".to_owned());
    cmd.push(quote("cd \"$0\" || exit 127; exec \"$@\""));
    cmd.push(quote(&launch.working_dir));
    cmd.extend(launch.argv.iter().map(|a| quote(a)));
    s.push_str(&cmd.join(" "));
    s.push('\n');
    s
}

/// Expands `$(NAME)` references the way the kubelet does in command, args and env values:
/// defined names are replaced, `$$` escapes a `$`, anything else is left as written. Pure.
pub fn expand(input: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
            && let Some(value) = env.get(&inner[..end])
        {
            out.push_str(value);
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_follows_the_kubelet_rules() {
        let env = BTreeMap::from([("A".to_owned(), "x".to_owned())]);
        assert_eq!(expand("$(A)-$(B)-$$(A)-$", &env), "x-$(B)-$(A)-$");
        assert_eq!(expand("plain", &env), "plain");
    }

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(quote("it's"), r"'it'\''s'");
    }

    fn launch(root: &Path, image: &Path) -> Launch {
        Launch {
            netns: "n".into(),
            root: root.to_path_buf(),
            image: image.to_path_buf(),
            hosts: PathBuf::from("/x/hosts"),
            mounts: vec![
                Mount {
                    source: PathBuf::from("/v/config"),
                    target: "/opt/kafka/config/oxbow".into(),
                    read_only: true,
                },
                Mount {
                    source: PathBuf::from("/v/data"),
                    target: "/var/lib/kafka/data".into(),
                    read_only: false,
                },
                Mount {
                    source: PathBuf::from("/v/kafka"),
                    target: "/etc/oxbow/kafka".into(),
                    read_only: true,
                },
            ],
            read_only_root: true,
            hostname: "p-0".into(),
            uid: 1000,
            gid: 0,
            groups: vec![1000],
            env: BTreeMap::from([("PATH".to_owned(), "/usr/bin".to_owned())]),
            working_dir: "/opt/kafka".into(),
            argv: vec!["sh".into(), "-c".into(), "echo 'hi'".into()],
        }
    }

    #[test]
    fn roots_link_into_the_image_and_materialise_mount_points() {
        let t = tempfile::tempdir().unwrap();
        let image = t.path().join("image");
        std::fs::create_dir_all(image.join("opt/kafka/config")).unwrap();
        std::fs::create_dir_all(image.join("opt/kafka/libs")).unwrap();
        std::fs::write(image.join("opt/kafka/config/log4j2.yaml"), "x").unwrap();
        std::fs::write(image.join("image.json"), "{}").unwrap();
        let root = t.path().join("root");
        let l = launch(&root, &image);
        let overlays = prepare_root(&l).unwrap();
        assert!(overlays.is_empty());
        // /opt and /opt/kafka became real folders; what the mount does not touch stays a link.
        assert!(!root.join("opt").is_symlink() && !root.join("opt/kafka").is_symlink());
        assert_eq!(
            std::fs::read_link(root.join("opt/kafka/libs")).unwrap(),
            Path::new("/.oxbow-image/opt/kafka/libs")
        );
        assert_eq!(
            std::fs::read_link(root.join("opt/kafka/config/log4j2.yaml")).unwrap(),
            Path::new("/.oxbow-image/opt/kafka/config/log4j2.yaml")
        );
        assert!(root.join("opt/kafka/config/oxbow").is_dir());
        assert!(root.join("var/lib/kafka/data").is_dir());
        assert!(!root.join("image.json").exists());
        // /etc is a folder of links to the host's, with room for volumes and the hosts file.
        assert!(root.join("etc/oxbow/kafka").is_dir());
        assert_eq!(
            std::fs::read_link(root.join("etc/passwd")).unwrap(),
            Path::new("/.oxbow-etc/passwd")
        );
        assert!(root.join("etc/hosts").is_file() && !root.join("etc/hosts").is_symlink());
    }

    #[test]
    fn the_script_mounts_then_drops_to_the_user() {
        let l = launch(Path::new("/r"), Path::new("/img"));
        let s = script(&l, &[]);
        let config = s
            .find("'/v/config' \"$R\"'/opt/kafka/config/oxbow'")
            .unwrap();
        let ro_root = s.find("mount -o remount,bind,ro \"$R\"\n").unwrap();
        assert!(
            config < ro_root,
            "volumes are mounted before the root turns read-only"
        );
        assert!(s.contains("mount --bind '/x/hosts' \"$R/etc/hosts\""));
        assert!(s.contains("hostname 'p-0'"));
        assert!(s.contains(
            "exec chroot --userspec=1000:0 --groups=1000 \"$R\" /usr/bin/env -i 'PATH=/usr/bin' /bin/sh -c"
        ));
        assert!(
            s.ends_with("'/opt/kafka' 'sh' '-c' 'echo '\\''hi'\\'''\n"),
            "{s}"
        );
    }
}
