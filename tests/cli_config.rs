//! The user's config file: found at $XDG_CONFIG_HOME/oci-store/config.toml, or where
//! --config or $OCI_STORE_CONFIG say; flags beat the environment beat the file beat the
//! defaults; `config show` names the source of every value; a bad file is an error naming the
//! file, the line and the key; an existing store's store.json decides its backends.

mod cli_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cli_support::isolate_environment;
use serde_json::Value;

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The config file in the XDG place this test's commands look at.
    fn xdg_config(&self) -> PathBuf {
        self.path("config/oci-store/config.toml")
    }

    fn write_config(&self, path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_oci-store"));
        isolate_environment(&mut command, self.dir.path());
        command.env("HOME", self.dir.path()).args(args);
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().expect("starting oci-store")
    }

    fn json(&self, args: &[&str], env: &[(&str, &str)]) -> Value {
        let output = self.run(args, env);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("one JSON document")
    }
}

fn setting<'a>(show: &'a Value, key: &str) -> &'a Value {
    show["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["key"] == key)
        .unwrap_or_else(|| panic!("no setting {key} in {show}"))
}

#[test]
fn config_show_names_the_source_of_every_value_by_precedence() {
    let home = Home::new();
    let file_store = home.path("file-store");
    home.write_config(
        &home.xdg_config(),
        &format!(
            "# my settings\nstore = {:?}\n\n[backends]\nmetadata = \"lmdb\"\n\n[gc]\nlock_wait = \"2m\"\n",
            file_store.to_str().unwrap()
        ),
    );

    let show = home.json(&["config", "show", "--json"], &[]);
    assert_eq!(show["schema"], "oci-store.config.v1");
    assert_eq!(show["config_file"]["loaded"], true);
    let store = setting(&show, "store");
    assert_eq!(store["value"], file_store.to_str().unwrap());
    assert_eq!(store["source"]["kind"], "file");
    assert_eq!(store["source"]["line"], 2);
    assert_eq!(setting(&show, "backends.kv")["value"], "lmdb");
    assert_eq!(setting(&show, "backends.kv")["source"]["line"], 5);
    assert_eq!(
        setting(&show, "backends.blobs")["source"]["kind"],
        "default"
    );
    assert_eq!(setting(&show, "gc.lock_wait")["value"], "2m");
    assert_eq!(
        setting(&show, "gc.appc_grace_period")["source"]["kind"],
        "default"
    );

    let env_store = home.path("env-store");
    let env = [
        ("OCI_STORE_DIR", env_store.to_str().unwrap()),
        ("OCI_STORE_BACKEND", "sqlite"),
    ];
    let show = home.json(&["config", "show", "--json"], &env);
    assert_eq!(
        setting(&show, "store")["value"],
        env_store.to_str().unwrap()
    );
    assert_eq!(
        setting(&show, "store")["source"]["variable"],
        "OCI_STORE_DIR"
    );
    assert_eq!(setting(&show, "backends.index")["value"], "sqlite");

    let flag_store = home.path("flag-store");
    let show = home.json(
        &[
            "config",
            "show",
            "--json",
            "--store",
            flag_store.to_str().unwrap(),
            "--backend",
            "lmdb",
        ],
        &env,
    );
    assert_eq!(
        setting(&show, "store")["value"],
        flag_store.to_str().unwrap()
    );
    assert_eq!(setting(&show, "store")["source"]["flag"], "--store");
    assert_eq!(
        setting(&show, "backends.index")["source"]["flag"],
        "--backend"
    );

    // The text form says the same, one line per value.
    let text = String::from_utf8(home.run(&["config", "show"], &[]).stdout).unwrap();
    let config = home.xdg_config();
    assert!(
        text.contains(&format!("{}:2", config.display())),
        "no file:line source in:\n{text}"
    );
    assert!(text.contains("backends.blobs"), "{text}");
}

#[test]
fn the_file_chooses_backends_of_a_new_store_and_store_json_decides_an_existing_one() {
    let home = Home::new();
    let store = home.path("store");
    let config = home.path("elsewhere/oci.toml");
    home.write_config(
        &config,
        &format!(
            "store = {:?}\n[backends]\nmetadata = \"lmdb\"\n",
            store.to_str().unwrap()
        ),
    );
    let via_flag = ["--config", config.to_str().unwrap()];
    let stats = home.json(&[&via_flag[..], &["stats", "--json"]].concat(), &[]);
    assert_eq!(stats["backends"]["index"], "lmdb", "{stats}");
    assert_eq!(stats["backends"]["blobs"], "fs", "{stats}");
    // `stats` only reads; storing something creates the store, with those backends.
    let output = home.run(
        &[&via_flag[..], &["data", "set", "--type", "t", "k", "v"]].concat(),
        &[],
    );
    assert!(output.status.success());

    // The file now asks for sqlite: the existing store stays lmdb, without complaint.
    home.write_config(
        &config,
        &format!(
            "store = {:?}\n[backends]\nmetadata = \"sqlite\"\n",
            store.to_str().unwrap()
        ),
    );
    let via_env = [("OCI_STORE_CONFIG", config.to_str().unwrap())];
    let stats = home.json(&["stats", "--json"], &via_env);
    assert_eq!(stats["backends"]["index"], "lmdb", "{stats}");
    let show = home.json(&["config", "show", "--json"], &via_env);
    assert_eq!(show["store_backends"]["index"], "lmdb", "{show}");

    // A flag is a demand: it must agree with what the store records.
    let output = home.run(&["stats", "--backend", "sqlite"], &via_env);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("backend convert"), "{stderr}");
}

#[test]
fn a_bad_config_file_names_the_file_line_and_key_and_exits_2() {
    let home = Home::new();
    let config = home.xdg_config();
    for (text, line, key) in [
        (
            "store = \"/x\"\n[gc]\nlock_wait = \"soon\"\n",
            3,
            "gc.lock_wait",
        ),
        (
            "[backends]\nblobs = \"fs\"\nmetdata = \"lmdb\"\n",
            3,
            "backends.metdata",
        ),
        (
            "\n[backends]\nmetadata = \"postgres\"\n",
            3,
            "backends.metadata",
        ),
        ("store = 42\n", 1, "store"),
    ] {
        home.write_config(&config, text);
        let output = home.run(&["list"], &[]);
        assert_eq!(output.status.code(), Some(2), "{text:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        for needed in [
            config.to_str().unwrap().to_string(),
            format!("line {line}"),
            format!("key `{key}`"),
        ] {
            assert!(
                stderr.contains(&needed),
                "{text:?}: no {needed:?} in {stderr}"
            );
        }
        assert!(!stderr.contains("panicked"), "{stderr}");
    }

    // A file named explicitly must exist; the XDG one may be absent.
    std::fs::remove_file(&config).unwrap();
    let missing = home.path("missing.toml");
    let output = home.run(
        &["--config", missing.to_str().unwrap(), "config", "show"],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing.toml"));
    let show = home.json(&["config", "show", "--json"], &[]);
    assert_eq!(show["config_file"]["loaded"], false);
}

#[test]
fn verbose_says_which_store_and_config_file_are_used_and_quiet_says_nothing() {
    let home = Home::new();
    let store = home.path("store");
    let store_arg = store.to_str().unwrap();
    let output = home.run(&["-v", "--store", store_arg, "stats"], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("store {store_arg} (flag --store)")),
        "{stderr}"
    );
    assert!(
        stderr.contains("config file") && stderr.contains("not present"),
        "{stderr}"
    );

    let output = home.run(&["--store", store_arg, "stats"], &[]);
    assert!(
        output.stderr.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = home.run(&["-q", "--store", store_arg, "stats"], &[]);
    assert!(
        output.stderr.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&output.stderr)
    );
}
