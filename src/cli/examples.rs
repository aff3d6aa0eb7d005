//! One example (or a few) per command, shown at the end of its `--help`, in its man page and
//! in docs/CLI.md. Kept in one table so a test can check that every command has one.

/// (command path without `oci-store`, example command lines). The root's path is "".
pub const EXAMPLES: &[(&str, &[&str])] = &[
    ("", &["oci-store import ./nginx-layout", "oci-store ls"]),
    (
        "import",
        &[
            "oci-store import ./layout",
            "oci-store import --sref latest --dref nginx:latest nginx.tar",
            "oci-store import --all ./layout",
            "docker save busybox:1.36 | oci-store import -",
            "oci-store import --sref busybox:1.36 --dref mine:1 saved.tar.zst",
        ],
    ),
    (
        "export",
        &[
            "oci-store export --sref nginx:latest ./out-layout",
            "oci-store export --sref nginx:latest --dref latest --archive nginx.tar",
            "oci-store export --sref nginx:latest --format docker-archive - | docker load",
        ],
    ),
    ("list", &["oci-store ls", "oci-store list --json | jq '.[].name'"]),
    ("tag", &["oci-store tag nginx:latest nginx:1.25", "oci-store tag sha256:4a5c nginx:pinned"]),
    ("rm", &["oci-store rm nginx:1.25 alpine:3", "oci-store rm --from-file old-refs.txt"]),
    ("cat", &["oci-store cat nginx:latest | jq .", "oci-store cat sha256:4a5c | jq .config"]),
    (
        "inspect",
        &[
            "oci-store inspect nginx:latest",
            "oci-store inspect --json nginx:latest | jq '.target.image.env'",
        ],
    ),
    ("du", &["oci-store du", "oci-store du --json | jq '.refs | sort_by(-.unique_bytes)'"]),
    ("check", &["oci-store check nginx:latest", "oci-store check --verify nginx:latest"]),
    (
        "unpack",
        &[
            "oci-store unpack nginx:latest ./rootfs",
            "oci-store unpack --platform linux/arm64/v8 --rootless nginx:latest ./rootfs",
        ],
    ),
    ("referrers", &["oci-store referrers --artifact-type application/spdx+json sha256:4a5c"]),
    ("lease", &["oci-store lease create --ttl 600 sha256:4a5c"]),
    ("lease create", &["oci-store lease create --ttl 600 sha256:4a5c"]),
    ("lease ls", &["oci-store lease ls --json"]),
    ("lease rm", &["oci-store lease rm 1700000000000-4242-1"]),
    ("gc", &["oci-store gc --dry-run", "oci-store gc --lock-wait 300"]),
    (
        "prune",
        &[
            "oci-store prune --dry-run --until 30d",
            "oci-store prune --keep-last 3 --max-size 50GiB",
            "oci-store prune --high-watermark 85% --low-watermark 80% --filter 'docker.io/*'",
        ],
    ),
    ("pin", &["oci-store pin docker.io/library/alpine:3.20"]),
    ("unpin", &["oci-store unpin docker.io/library/alpine:3.20"]),
    ("blob", &["oci-store blob put ./file.bin"]),
    (
        "blob put",
        &[
            "oci-store blob put --media-type application/json config.json",
            "curl -s https://example.com/x | oci-store blob put -",
        ],
    ),
    ("blob get", &["oci-store blob get sha256:4a5c > blob.bin"]),
    ("blob info", &["oci-store blob info 4a5c"]),
    ("blob ls", &["oci-store blob ls --media-type application/vnd.oci.image.manifest.v1+json"]),
    ("blob resolve", &["oci-store blob resolve 4a5c"]),
    ("blob rm", &["oci-store blob rm sha256:4a5c", "oci-store blob rm --force 4a5c"]),
    ("data", &["oci-store data set --type tag app:v1 ready --blob sha256:4a5c"]),
    ("data set", &["oci-store data set --type tag app:v1 ready --blob sha256:4a5c"]),
    ("data get", &["oci-store data get --type tag app:v1"]),
    ("data ls", &["oci-store data ls --type tag --prefix app:"]),
    ("data rm", &["oci-store data rm --type tag app:v1"]),
    ("extra", &["oci-store extra set sha256:4a5c last-used 1700000000"]),
    ("extra set", &["oci-store extra set sha256:4a5c last-used 1700000000"]),
    ("extra get", &["oci-store extra get sha256:4a5c last-used"]),
    ("extra rm", &["oci-store extra rm sha256:4a5c last-used"]),
    ("fsck", &["oci-store fsck", "oci-store fsck --repair"]),
    ("stats", &["oci-store stats", "oci-store --backend lmdb stats   # creates an LMDB store"]),
    ("backend", &["oci-store backend info"]),
    ("backend info", &["oci-store backend info --json"]),
    ("backend convert", &["oci-store backend convert --to lmdb"]),
    ("appc", &["oci-store appc import --latest example-app.aci"]),
    ("appc import", &["oci-store appc import --latest example-app.aci"]),
    ("appc get", &["oci-store appc get example.com/app --label version=1.0 --label os=linux"]),
    ("appc ls", &["oci-store appc ls --sort last-used"]),
    ("appc info", &["oci-store appc info example.com/app"]),
    ("appc remote", &["oci-store appc remote ls"]),
    (
        "appc remote set",
        &["oci-store appc remote set --etag '\"abc\"' --max-age 3600 https://example.com/app.aci sha512-1f2e"],
    ),
    ("appc remote get", &["oci-store appc remote get https://example.com/app.aci"]),
    ("appc remote ls", &["oci-store appc remote ls --json"]),
    ("appc remote rm", &["oci-store appc remote rm https://example.com/app.aci"]),
    ("appc remote decide", &["oci-store appc remote decide https://example.com/app.aci"]),
    (
        "appc remote not-modified",
        &["oci-store appc remote not-modified --max-age 3600 https://example.com/app.aci"],
    ),
    ("appc check", &["oci-store appc check example.com/app"]),
    ("appc render", &["oci-store appc render example.com/app ./rootfs"]),
    ("appc verify-tree", &["oci-store appc verify-tree example.com/app"]),
    ("appc export", &["oci-store appc export --gzip example.com/app app.aci"]),
    ("appc rm", &["oci-store appc rm example.com/app sha512-1f2e"]),
    ("appc gc", &["oci-store appc gc --grace-period 7d --keep-per-name 2 --dry-run"]),
    ("config", &["oci-store config show"]),
    (
        "config show",
        &["oci-store config show", "OCI_STORE_BACKEND=lmdb oci-store config show --json"],
    ),
    (
        "pull",
        &[
            "oci-store pull registry.example.com/team/app:1.2",
            "oci-store pull --platform linux/arm64/v8 --dref app:arm localhost:5000/app:1.2",
        ],
    ),
    (
        "push",
        &[
            "oci-store push app:1.2 registry.example.com/team/app:1.2",
            "oci-store push --with-referrers --mount-from team/base app:1.2 registry.example.com/team/app:1.2",
        ],
    ),
    (
        "serve",
        &[
            "oci-store serve",
            "oci-store serve --push --listen 127.0.0.1:5001 --upload-timeout 30m",
        ],
    ),
    ("login", &["oci-store login -u ci --password-stdin registry.example.com"]),
    ("logout", &["oci-store logout registry.example.com"]),
    ("completions", &["oci-store completions bash > /etc/bash_completion.d/oci-store"]),
    ("man", &["oci-store man /usr/local/share/man/man1"]),
];

/// The examples of the command at `path` ("blob put"), if any.
pub fn examples_of(path: &str) -> Option<&'static [&'static str]> {
    EXAMPLES
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, examples)| *examples)
}

/// The text added at the end of a command's `--help`.
pub fn examples_text(examples: &[&str]) -> String {
    let title = if examples.len() == 1 {
        "Example:"
    } else {
        "Examples:"
    };
    let mut text = String::from(title);
    for example in examples {
        text.push_str("\n  ");
        text.push_str(example);
    }
    text
}
