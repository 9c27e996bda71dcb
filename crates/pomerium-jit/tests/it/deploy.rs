//! The deploy files (`deploy/kubernetes`, `deploy/systemd`) against the
//! binary: every setting they name is one `serve --help` lists, the ports
//! and probes are the binary's, the probe paths answer on a running app, the
//! unit's command exists, and the sandboxing they promise is there.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

use crate::harness::Env;

const BIN: &str = env!("CARGO_BIN_EXE_pomerium-jit");

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What `pomerium-jit serve --help` says about its settings.
struct Help {
    /// Every `[env: NAME]` it lists.
    settings: BTreeSet<String>,
    /// The `PORT` default.
    port: u16,
}

fn help() -> Help {
    // No environment: `[env: NAME=value]` would otherwise show values.
    let out = Command::new(BIN)
        .args(["serve", "--help"])
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success(), "serve --help: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let settings: BTreeSet<String> = text
        .split("[env: ")
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect()
        })
        .collect();
    let port_line = text
        .lines()
        .find(|l| l.contains("[env: PORT=]"))
        .unwrap_or_else(|| panic!("no PORT in serve --help:\n{text}"));
    let port = port_line
        .split_once("[default: ")
        .and_then(|(_, d)| d.split_once(']'))
        .and_then(|(d, _)| d.parse().ok())
        .unwrap_or_else(|| panic!("no PORT default in `{port_line}`"));
    Help { settings, port }
}

/// The names in `names` that are not settings of the binary.
fn unknown<'a>(known: &BTreeSet<String>, names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    names.into_iter().filter(|n| !known.contains(*n)).collect()
}

/// The binary sets glibc's arenas itself (one per runtime worker and one
/// more, `memory::runtime`); a deployment's `GLIBC_TUNABLES` with the
/// `arena_max=2` they used to carry is overridden, so none may say so, and
/// the load test measures the binary as deployed.
#[test]
fn no_deployment_sets_the_allocator_the_binary_sets_itself() {
    let files = [
        "Dockerfile",
        "deploy/systemd/pomerium-jit.service",
        "deploy/kubernetes/deployment.yaml",
        "crates/pomerium-jit/examples/loadtest.rs",
    ];
    for file in files {
        assert!(
            !read(&repo(file)).contains("GLIBC_TUNABLES"),
            "{file} sets GLIBC_TUNABLES"
        );
    }
}

// ---------------------------------------------------------------- Kubernetes

fn yaml_docs(path: &Path) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(&read(path))
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|v| !v.is_null())
        .collect()
}

/// `KEY=value` lines, as kustomize's `envs` and systemd's `EnvironmentFile=`
/// read them; `#KEY=value` lines too when `commented` (suggested settings).
fn env_file(text: &str, commented: bool) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter_map(|l| match l.strip_prefix('#') {
            Some(rest) if commented => Some(rest.trim_start()),
            Some(_) => None,
            None => Some(l),
        })
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The kustomization and every object and generated ConfigMap it names.
struct Kube {
    dir: PathBuf,
    kustomization: Value,
    objects: Vec<Value>,
    /// Generated ConfigMaps: name → data.
    config_maps: BTreeMap<String, BTreeMap<String, String>>,
}

impl Kube {
    fn load() -> Kube {
        let dir = repo("deploy/kubernetes");
        let kustomization = yaml_docs(&dir.join("kustomization.yaml")).remove(0);
        let objects = strings(&kustomization["resources"])
            .flat_map(|file| yaml_docs(&dir.join(file)))
            .collect();
        let mut config_maps = BTreeMap::new();
        for generator in kustomization["configMapGenerator"].as_array().unwrap() {
            let mut data = BTreeMap::new();
            for file in strings(&generator["envs"]) {
                data.extend(env_file(&read(&dir.join(file)), false));
            }
            for file in strings(&generator["files"]) {
                data.insert(file.to_owned(), read(&dir.join(file)));
            }
            config_maps.insert(generator["name"].as_str().unwrap().to_owned(), data);
        }
        Kube {
            dir,
            kustomization,
            objects,
            config_maps,
        }
    }

    fn one(&self, kind: &str) -> &Value {
        let found: Vec<&Value> = self.objects.iter().filter(|o| o["kind"] == kind).collect();
        assert_eq!(found.len(), 1, "expected one {kind}, found {}", found.len());
        found[0]
    }

    fn pod(&self) -> &Value {
        &self.one("Deployment")["spec"]["template"]["spec"]
    }

    fn container(&self) -> &Value {
        let containers = self.pod()["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 1, "one container");
        &containers[0]
    }

    /// Every variable the container gets: `env` and `envFrom` ConfigMaps.
    fn env(&self) -> BTreeMap<String, Value> {
        let c = self.container();
        let mut env: BTreeMap<String, Value> = array(&c["env"])
            .map(|e| (e["name"].as_str().unwrap().to_owned(), e.clone()))
            .collect();
        for source in array(&c["envFrom"]) {
            let name = source["configMapRef"]["name"]
                .as_str()
                .unwrap_or_else(|| panic!("envFrom other than a generated ConfigMap: {source}"));
            let data = self
                .config_maps
                .get(name)
                .unwrap_or_else(|| panic!("envFrom names ConfigMap {name}, not generated"));
            for (k, v) in data {
                env.insert(k.clone(), Value::String(v.clone()));
            }
        }
        env
    }

    /// Where the volume built from `source` (a ConfigMap or Secret name) is
    /// mounted, and the volume.
    fn mount_of(&self, kind: &str, name_key: &str, name: &str) -> (String, Value) {
        let volume = array(&self.pod()["volumes"])
            .find(|v| v[kind][name_key] == name)
            .unwrap_or_else(|| panic!("no volume from {kind} {name}"))
            .clone();
        let mount = array(&self.container()["volumeMounts"])
            .find(|m| m["name"] == volume["name"])
            .unwrap_or_else(|| panic!("volume {} is not mounted", volume["name"]));
        assert_eq!(mount["readOnly"], true, "{mount}");
        (mount["mountPath"].as_str().unwrap().to_owned(), volume)
    }

    /// The container port a probe or Service names, by number or by name.
    fn port(&self, port: &Value) -> u64 {
        match port {
            Value::Number(n) => n.as_u64().unwrap(),
            Value::String(name) => array(&self.container()["ports"])
                .find(|p| p["name"] == *name)
                .unwrap_or_else(|| panic!("no container port named {name}"))["containerPort"]
                .as_u64()
                .unwrap(),
            other => panic!("port {other}"),
        }
    }
}

fn array(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

fn strings(v: &Value) -> impl Iterator<Item = &str> {
    array(v).map(|s| s.as_str().unwrap())
}

fn value<'a>(env: &'a BTreeMap<String, Value>, name: &str) -> &'a str {
    env.get(name)
        .and_then(|e| e.as_str().or_else(|| e["value"].as_str()))
        .unwrap_or_else(|| panic!("{name} has no literal value"))
}

/// Mebibytes of a memory quantity like `64Mi`.
fn mebibytes(q: &Value) -> u64 {
    let q = q.as_str().unwrap();
    match q.strip_suffix("Mi") {
        Some(n) => n.parse().unwrap(),
        None => q.strip_suffix("Gi").unwrap().parse::<u64>().unwrap() * 1024,
    }
}

/// Whether `tool` runs; it must in CI (the machine has it), elsewhere the
/// check that needs it is skipped with a note.
/// Whether `tool` runs here. `.ci/run` installs those `required_in_ci`;
/// kubectl has no Debian package, so CI uses it only where the machine has it.
fn have(tool: &str, required_in_ci: bool) -> bool {
    let found = Command::new(tool)
        .arg("--help")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            !required_in_ci || std::env::var_os("CI").is_none(),
            "{tool} must be installed in CI"
        );
        eprintln!("skipping the {tool} check: {tool} is not installed");
    }
    found
}

#[test]
fn a_name_the_binary_does_not_know_is_caught() {
    let known = help().settings;
    for name in [
        "API_USER_TOKEN_FILE",
        "DATABASE_URL",
        "CONFIG_FILE",
        "PORT",
        "DATA_DIR",
    ] {
        assert!(known.contains(name), "{name} missing from {known:?}");
    }
    assert_eq!(
        unknown(&known, ["ADMIN_EMAILS", "ADMIN_EMAIL", "DATABASE_URI"]),
        ["ADMIN_EMAIL", "DATABASE_URI"]
    );
}

#[test]
fn kubernetes_sets_only_settings_the_binary_knows_and_every_required_one() {
    let known = help().settings;
    let kube = Kube::load();
    let env = kube.env();
    let bad = unknown(&known, env.keys().map(String::as_str));
    assert!(bad.is_empty(), "not settings of pomerium-jit: {bad:?}");
    for required in [
        "ORGANIZATION_ID",
        "CLUSTER_ID",
        "JWKS_ENDPOINT",
        "ADMIN_EMAILS",
    ] {
        assert!(env.contains_key(required), "{required} is not set");
    }
    assert!(env.contains_key("API_USER_TOKEN") || env.contains_key("API_USER_TOKEN_FILE"));
    assert_eq!(kube.container()["args"], serde_json::json!(["serve"]));
}

#[test]
fn kubernetes_runs_several_replicas_on_postgres_from_the_secret() {
    let kube = Kube::load();
    let replicas = kube.one("Deployment")["spec"]["replicas"].as_u64().unwrap();
    assert!(replicas >= 2, "{replicas} replica(s)");
    let secret = kube.one("Secret");
    let name = secret["metadata"]["name"].as_str().unwrap();
    let data = secret["stringData"].as_object().unwrap();
    let env = kube.env();
    let reference = &env["DATABASE_URL"]["valueFrom"]["secretKeyRef"];
    assert_eq!(reference["name"], name);
    let url = data[reference["key"].as_str().unwrap()].as_str().unwrap();
    assert!(
        url.starts_with("postgres://"),
        "several replicas need PostgreSQL: {url}"
    );
    for (key, value) in data {
        let value = value.as_str().unwrap();
        assert!(
            value.contains("REPLACE-WITH-"),
            "{key} is not a placeholder: {value}"
        );
    }

    // The token file is the Secret's key, mounted read-only.
    let (dir, volume) = kube.mount_of("secret", "secretName", name);
    let item = array(&volume["secret"]["items"]).next().unwrap();
    assert!(data.contains_key(item["key"].as_str().unwrap()), "{item}");
    let file = format!("{dir}/{}", item["path"].as_str().unwrap());
    assert_eq!(value(&env, "API_USER_TOKEN_FILE"), file);
}

#[test]
fn kubernetes_config_file_is_the_mounted_resources_file_and_passes_config_check() {
    let kube = Kube::load();
    let env = kube.env();
    let generator = kube.kustomization["configMapGenerator"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["files"].is_array())
        .expect("a ConfigMap generated from the resources file");
    let file = strings(&generator["files"]).next().unwrap();
    let (dir, _) = kube.mount_of("configMap", "name", generator["name"].as_str().unwrap());
    assert_eq!(value(&env, "CONFIG_FILE"), format!("{dir}/{file}"));

    let out = Command::new(BIN)
        .args(["config", "check"])
        .arg(kube.dir.join(file))
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn kubernetes_ports_and_probes_are_the_binary_s() {
    let help = help();
    let kube = Kube::load();
    let c = kube.container();
    let ports: Vec<u64> = array(&c["ports"])
        .map(|p| p["containerPort"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, [u64::from(help.port)]);
    for (probe, path) in [
        ("startupProbe", "/healthz"),
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"], path, "{probe}");
        assert_eq!(kube.port(&get["port"]), u64::from(help.port), "{probe}");
    }
    let service = kube.one("Service");
    let service_ports: Vec<&Value> = array(&service["spec"]["ports"]).collect();
    assert_eq!(service_ports.len(), 1);
    assert_eq!(
        kube.port(&service_ports[0]["targetPort"]),
        u64::from(help.port)
    );
}

#[test]
fn kubernetes_selectors_match_the_pods() {
    let kube = Kube::load();
    let labels = &kube.one("Deployment")["spec"]["template"]["metadata"]["labels"];
    let matches = |selector: &Value| {
        let selector = selector.as_object().unwrap();
        !selector.is_empty() && selector.iter().all(|(k, v)| labels[k] == *v)
    };
    assert!(matches(
        &kube.one("Deployment")["spec"]["selector"]["matchLabels"]
    ));
    assert!(matches(&kube.one("Service")["spec"]["selector"]));
    let pdb = kube.one("PodDisruptionBudget");
    assert!(matches(&pdb["spec"]["selector"]["matchLabels"]));
    assert_eq!(pdb["spec"]["minAvailable"], 1);
}

#[test]
fn kubernetes_pods_are_locked_down_and_sized() {
    let kube = Kube::load();
    let pod = kube.pod();
    let c = kube.container();
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert!(sc["capabilities"]["add"].is_null());
    for seccomp in [
        &sc["seccompProfile"],
        &pod["securityContext"]["seccompProfile"],
    ] {
        assert_eq!(seccomp["type"], "RuntimeDefault");
    }
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["automountServiceAccountToken"], false);

    // The pod's user is the image's (Dockerfile `USER`).
    let dockerfile = read(&repo("Dockerfile"));
    let user = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("Dockerfile USER");
    assert_eq!(pod["securityContext"]["runAsUser"].to_string(), user.trim());

    let resources = &c["resources"];
    let (request, limit) = (
        mebibytes(&resources["requests"]["memory"]),
        mebibytes(&resources["limits"]["memory"]),
    );
    assert!(
        request <= limit,
        "memory request {request}Mi above limit {limit}Mi"
    );
    assert!(resources["requests"]["cpu"].is_string() && resources["limits"]["cpu"].is_string());
}

/// The image ships what the load test measures: the production build of
/// `scripts/build-production.sh` (no demo, glibc linked in statically).
#[test]
fn the_image_ships_the_production_build() {
    let dockerfile = read(&repo("Dockerfile"));
    assert!(
        dockerfile.contains(r#"RUN cp "$(scripts/build-production.sh)" /pomerium-jit"#),
        "the Dockerfile builds with scripts/build-production.sh"
    );
    assert!(dockerfile.contains("COPY --from=build /pomerium-jit /usr/local/bin/pomerium-jit"));
    let script = read(&repo("scripts/build-production.sh"));
    for flag in [
        "-C target-feature=+crt-static",
        "--no-default-features",
        "--target \"$host\"",
    ] {
        assert!(script.contains(flag), "build-production.sh passes {flag}");
    }
    let load_test = read(&repo("scripts/load-test.sh"));
    assert!(load_test.contains("PJ_BIN=$(scripts/build-production.sh)"));
}

#[test]
fn kustomization_lists_every_manifest_and_builds() {
    let kube = Kube::load();
    let mut listed: BTreeSet<&str> = strings(&kube.kustomization["resources"]).collect();
    listed.insert("kustomization.yaml");
    for entry in std::fs::read_dir(&kube.dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".yaml") {
            assert!(
                listed.contains(name.as_str()),
                "{name} is not in kustomization.yaml"
            );
        }
    }
    if !have("kubectl", false) {
        return;
    }
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(&kube.dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "kubectl kustomize: {out:?}");
    let built = String::from_utf8(out.stdout).unwrap();
    let mut kinds: Vec<String> = serde_yaml_ng::Deserializer::from_str(&built)
        .map(|doc| {
            Value::deserialize(doc).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "ConfigMap",
            "ConfigMap",
            "Deployment",
            "PodDisruptionBudget",
            "Secret",
            "Service"
        ]
    );
}

#[tokio::test]
async fn probe_paths_answer_200_on_a_running_app() {
    let env = Env::new().await;
    let app = env.spawn(&[]);
    let (status, _) = app.get("/healthz", None).await;
    assert_eq!(status, 200);
    // Ready once the first sync with (the fake) Zero has succeeded.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = app.get("/readyz", None).await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz answers {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ------------------------------------------------------------------- systemd

/// A unit file: each key's values in order (keys repeat in systemd).
fn unit(text: &str) -> BTreeMap<(String, String), Vec<String>> {
    let mut section = String::new();
    let mut keys: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not `key=value`: {line}"));
        keys.entry((section.clone(), key.trim().to_owned()))
            .or_default()
            .push(value.trim().to_owned());
    }
    keys
}

struct Unit(BTreeMap<(String, String), Vec<String>>);

impl Unit {
    fn load() -> Unit {
        Unit(unit(&read(&repo("deploy/systemd/pomerium-jit.service"))))
    }

    fn all(&self, key: &str) -> &[String] {
        self.0
            .get(&("Service".to_owned(), key.to_owned()))
            .map_or(&[], Vec::as_slice)
    }

    fn get(&self, key: &str) -> &str {
        match self.all(key) {
            [one] => one,
            other => panic!("{key}: expected one value, found {other:?}"),
        }
    }
}

#[test]
fn systemd_sets_only_settings_the_binary_knows() {
    let known = help().settings;
    let unit = Unit::load();
    let set: BTreeMap<String, String> = unit
        .all("Environment")
        .iter()
        .flat_map(|v| env_file(&v.split_whitespace().collect::<Vec<_>>().join("\n"), false))
        .collect();
    let example = env_file(
        &read(&repo("deploy/systemd/pomerium-jit.env.example")),
        true,
    );
    let names = set.keys().chain(example.keys()).map(String::as_str);
    let bad = unknown(&known, names);
    assert!(bad.is_empty(), "not settings of pomerium-jit: {bad:?}");
    for required in [
        "API_USER_TOKEN",
        "ORGANIZATION_ID",
        "CLUSTER_ID",
        "JWKS_ENDPOINT",
    ] {
        let value = example
            .get(required)
            .unwrap_or_else(|| panic!("{required} missing"));
        assert!(!value.is_empty(), "{required}");
    }
    assert!(example["API_USER_TOKEN"].contains("REPLACE-WITH-"));

    // DATA_DIR is the state directory systemd makes for the service user.
    assert_eq!(
        set["DATA_DIR"],
        format!("/var/lib/{}", unit.get("StateDirectory"))
    );
    let user = unit.get("User");
    let sysusers = read(&repo("deploy/systemd/pomerium-jit.sysusers"));
    assert!(
        sysusers
            .lines()
            .any(|l| l.split_whitespace().take(2).eq(["u", user])),
        "the sysusers file does not create {user}"
    );
}

#[test]
fn systemd_starts_serve_and_stops_restarting_on_bad_settings() {
    let unit = Unit::load();
    let exec: Vec<&str> = unit.get("ExecStart").split_whitespace().collect();
    assert!(exec[0].ends_with("/pomerium-jit"), "{exec:?}");
    let status = Command::new(BIN)
        .args(&exec[1..])
        .arg("--help")
        .env_clear()
        .output()
        .unwrap()
        .status;
    assert!(
        status.success(),
        "pomerium-jit {:?} --help: {status}",
        &exec[1..]
    );
    assert_eq!(unit.get("Restart"), "on-failure");

    // A missing setting exits 2, and the unit does not restart on 2.
    let out = Command::new(BIN)
        .args(&exec[1..])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(unit.get("RestartPreventExitStatus"), "2");
}

#[test]
fn systemd_sandboxes_the_service() {
    let unit = Unit::load();
    for (key, expected) in [
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("MemoryDenyWriteExecute", "yes"),
        ("LockPersonality", "yes"),
        ("RestrictNamespaces", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("SystemCallArchitectures", "native"),
        ("UMask", "0077"),
    ] {
        assert_eq!(unit.get(key), expected, "{key}");
    }
    assert_eq!(
        unit.all("SystemCallFilter").first().map(String::as_str),
        Some("@system-service")
    );
    assert_ne!(unit.get("User"), "root");
    assert!(unit.get("EnvironmentFile").starts_with("/etc/"));

    if !have("systemd-analyze", true) {
        return;
    }
    // systemd's own check, with ExecStart pointing at this build.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("pomerium-jit.service");
    let text = read(&repo("deploy/systemd/pomerium-jit.service"))
        .replace("/usr/local/bin/pomerium-jit", BIN);
    std::fs::write(&copy, text).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap();
    assert!(out.status.success(), "systemd-analyze verify: {out:?}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
