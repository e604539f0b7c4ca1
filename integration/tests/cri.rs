//! Pods under Kubernetes' CRI: containerd 2.x (hack/cri-env: private containerd with its CRI
//! plugin, a CNI bridge and a local registry, all in a network namespace of their own) driven
//! over its socket with the `k8s-cri` client, the way the kubelet drives it. Pods run with the
//! `runc` and the `ferry` runtime handlers side by side (both the runc shim, `BinaryName`), and
//! a table of the outcomes is written to target/tmp/cri-table.txt.
//!
//! Checkpoint is the kubelet's: CheckpointContainer exports an archive and leaves the
//! container running. Restore is containerd's: CreateContainer in a new pod whose image is
//! that archive, then StartContainer.

use ferry_integration::{describe, ferry_bin, listening, require_root, text, COUNTER};
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    Capability, CheckpointContainerRequest, ContainerConfig, ContainerMetadata,
    ContainerStatusRequest, CreateContainerRequest, ExecSyncRequest, ImageSpec, KeyValue,
    LinuxContainerConfig, LinuxContainerSecurityContext, LinuxPodSandboxConfig, Mount,
    MountPropagation, PodSandboxConfig, PodSandboxMetadata, PullImageRequest,
    RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest, StopPodSandboxRequest,
};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

const RUNTIMES: [&str; 2] = ["runc", "ferry"];
/// CRI's ContainerState RUNNING.
const CONTAINER_RUNNING: i32 = 1;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The private containerd 2.x, registry and network namespace of hack/cri-env; everything
/// stopped and removed on drop, also when a test fails.
struct CriEnv {
    dir: PathBuf,
    netns: String,
    /// Extra environment for containerd, which its shims and the runtimes inherit.
    envs: Vec<(String, String)>,
}

impl CriEnv {
    fn start(tag: &str) -> CriEnv {
        Self::start_with(tag, &[])
    }

    fn start_with(tag: &str, envs: &[(&str, &str)]) -> CriEnv {
        let pid = std::process::id();
        let env = CriEnv {
            dir: PathBuf::from(format!("/var/lib/ferry-test/cri-{tag}-{pid}")),
            netns: format!("cri-{tag}-{pid}"),
            envs: envs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let out = env.script("start");
        if !out.status.success() {
            let log = std::fs::read_to_string(env.dir.join("containerd.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "hack/cri-env start failed {}\n--- containerd.log (last lines, newest first)\n{}",
                describe(&out),
                tail.join("\n")
            );
        }
        env
    }

    fn script(&self, action: &str) -> Output {
        Command::new("bash")
            .arg(repo().join("hack/cri-env"))
            .arg(action)
            .env("FERRY_CRI_DIR", &self.dir)
            .env("FERRY_CRI_NETNS", &self.netns)
            .env("FERRY_BIN", ferry_bin())
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap_or_else(|e| panic!("running hack/cri-env {action}: {e}"))
    }

    fn sock(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    /// hack/cri-env's default registry address, inside its network namespace.
    fn registry(&self) -> &'static str {
        "127.0.0.1:35011"
    }

    fn image(&self) -> String {
        format!("{}/ferry-busybox:latest", self.registry())
    }

    /// Make a checkpoint image of `archive` (see [`write_checkpoint_layout`]) and push it to
    /// the registry as `<registry>/<name>:latest`; returns that reference.
    fn push_checkpoint_image(
        &self,
        archive: &Path,
        name: &str,
        container: &str,
    ) -> Result<String, String> {
        let layout = self.dir.join("oci").join(name);
        write_checkpoint_layout(archive, &layout, container)?;
        let reference = format!("{}/{name}:latest", self.registry());
        let out = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.netns))
            .args(["skopeo", "copy", "-q", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:latest", layout.display()))
            .arg(format!("docker://{reference}"))
            .output()
            .map_err(|e| format!("running skopeo: {e}"))?;
        // The layout's blob is a second copy of the archive: gone once pushed.
        let _ = std::fs::remove_dir_all(&layout);
        if !out.status.success() {
            return Err(format!("pushing {reference} {}", describe(&out)));
        }
        Ok(reference)
    }

    /// The CRIU both runtimes run here: the first `criu` on containerd's PATH (the shim
    /// hands its environment down), and its `--version` line.
    fn criu(&self) -> Result<(PathBuf, String), String> {
        let pid = std::fs::read_to_string(self.dir.join("containerd.pid"))
            .map_err(|e| format!("containerd.pid: {e}"))?;
        let environ = std::fs::read(format!("/proc/{}/environ", pid.trim()))
            .map_err(|e| format!("containerd's environment: {e}"))?;
        let path = environ
            .split(|b| *b == 0)
            .find_map(|v| v.strip_prefix(b"PATH="))
            .map(text)
            .ok_or("containerd runs without PATH")?;
        let criu = std::env::split_paths(&path)
            .map(|d| d.join("criu"))
            .find(|c| c.is_file())
            .ok_or_else(|| format!("no criu on containerd's PATH {path}"))?;
        let out = Command::new(&criu)
            .arg("--version")
            .output()
            .map_err(|e| format!("{}: {e}", criu.display()))?;
        let version = text(&out.stdout)
            .lines()
            .find(|l| l.starts_with("Version:"))
            .map(|l| l.trim().to_string())
            .ok_or_else(|| format!("{} --version {}", criu.display(), describe(&out)))?;
        Ok((criu, version))
    }

    /// The last warnings and errors of containerd's log, for a failure message (the shim
    /// deletes a failed container's bundle, CRIU's logs with it).
    fn log_excerpt(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default();
        log.lines()
            .filter(|l| l.contains("level=error") || l.contains("level=warn"))
            .rev()
            .take(8)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A CRI client on this environment's socket, with the test image pulled.
    async fn client(&self) -> Cri {
        let mut cri = connect(&self.sock()).await;
        if let Err(e) = cri.pull(&self.image()).await {
            panic!("{e}\n{}", self.log_excerpt());
        }
        cri
    }
}

impl Drop for CriEnv {
    fn drop(&mut self) {
        // FERRY_CRI_KEEP_LOGS=DIR keeps the runtimes' and CRIU's logs and the bundles' specs,
        // which go with the environment's directory otherwise.
        if let Some(keep) = std::env::var_os("FERRY_CRI_KEEP_LOGS") {
            let state = self.dir.join("state");
            let _ = Command::new("sh")
                .arg("-c")
                .arg("mkdir -p \"$2\" && cd \"$1\" && find . \\( -name '*.log' -o -name config.json \\) -exec cp --parents {} \"$2\" \\; ; cp ../containerd.log \"$2\"")
                .arg("sh")
                .arg(&state)
                .arg(&keep)
                .status();
        }
        let out = self.script("stop");
        if !out.status.success() {
            eprintln!("hack/cri-env stop failed {}", describe(&out));
        }
    }
}

/// A file's sha256 digest and size, as OCI descriptors name blobs.
fn blob_digest(path: &Path) -> Result<(String, u64), String> {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .map_err(|e| format!("running sha256sum: {e}"))?;
    let hex = text(&out.stdout)
        .split_whitespace()
        .next()
        .filter(|h| out.status.success() && h.len() == 64)
        .map(str::to_string)
        .ok_or_else(|| format!("sha256sum {} {}", path.display(), describe(&out)))?;
    let size = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    Ok((format!("sha256:{hex}"), size))
}

/// Write an OCI image layout at `dir` holding a checkpoint image, in the form CRI-O, Podman
/// and buildah make and containerd 2.x's CRI restores from: one uncompressed layer that is
/// the checkpoint archive itself (its files, spec.dump, config.dump, checkpoint/ ..., are the
/// layer's), a minimal image config for this machine's platform, and a manifest annotation
/// naming the container, which is how the runtime tells a checkpoint image from an ordinary
/// one: `org.criu.checkpoint.container.name` for containerd 2.1 (the name in the
/// checkpointctl library it carries), `io.kubernetes.cri-o.annotations.checkpoint.name` for
/// CRI-O (both are set).
fn write_checkpoint_layout(archive: &Path, dir: &Path, container: &str) -> Result<(), String> {
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).map_err(|e| format!("{}: {e}", blobs.display()))?;
    let put = |bytes: &[u8]| -> Result<(String, u64), String> {
        let tmp = dir.join("blob.tmp");
        std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
        let (digest, size) = blob_digest(&tmp)?;
        let dest = blobs.join(digest.trim_start_matches("sha256:"));
        std::fs::rename(&tmp, &dest).map_err(|e| format!("{}: {e}", dest.display()))?;
        Ok((digest, size))
    };
    let (layer, layer_size) = blob_digest(archive)?;
    let layer_blob = blobs.join(layer.trim_start_matches("sha256:"));
    std::fs::copy(archive, &layer_blob).map_err(|e| format!("{}: {e}", layer_blob.display()))?;
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let config = serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": [layer] },
        "history": [{ "created_by": "ferry integration test: checkpoint of a CRI container" }],
    });
    let (config, config_size) = put(config.to_string().as_bytes())?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config,
            "size": config_size,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer,
            "size": layer_size,
        }],
        "annotations": {
            // containerd 2.1 (checkpointctl's library) looks for this one...
            "org.criu.checkpoint.container.name": container,
            // ...CRI-O and older checkpointctl for this one.
            "io.kubernetes.cri-o.annotations.checkpoint.name": container,
        },
    });
    let (manifest, manifest_size) = put(manifest.to_string().as_bytes())?;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest,
            "size": manifest_size,
            "annotations": { "org.opencontainers.image.ref.name": "latest" },
        }],
    });
    std::fs::write(dir.join("index.json"), index.to_string())
        .and_then(|()| std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#))
        .map_err(|e| format!("{}: {e}", dir.display()))
}

struct Cri {
    rt: RuntimeServiceClient<Channel>,
    img: ImageServiceClient<Channel>,
}

/// A single-threaded tokio runtime for one test's CRI calls.
fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"))
}

async fn connect(sock: &Path) -> Cri {
    let sock = sock.to_path_buf();
    // The URI is required by tonic and never used: the connector dials the unix socket.
    let channel = tonic::transport::Endpoint::from_static("http://[::1]:1")
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let sock = sock.clone();
            async move {
                let s = tokio::net::UnixStream::connect(sock).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
            }
        }))
        .await
        .unwrap_or_else(|e| panic!("connecting to containerd's CRI socket: {e}"));
    Cri {
        rt: RuntimeServiceClient::new(channel.clone()),
        img: ImageServiceClient::new(channel),
    }
}

fn pod_config(name: &str) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.to_string(),
            uid: format!("{name}-uid"),
            namespace: "cri-test".to_string(),
            attempt: 0,
        }),
        hostname: name.to_string(),
        linux: Some(LinuxPodSandboxConfig {
            // hack/cri-env's stop empties and removes /cri-pods.
            cgroup_parent: format!("/cri-pods/{name}"),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container_config(name: &str, image: &str, command: &[&str]) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.to_string(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: image.to_string(),
            ..Default::default()
        }),
        command: command.iter().map(|s| s.to_string()).collect(),
        // The test image sets no PATH, and ferry (unlike runc) refuses to start a process
        // without one even when its command is an absolute path.
        envs: vec![KeyValue {
            key: "PATH".into(),
            value: "/usr/sbin:/usr/bin:/sbin:/bin".into(),
        }],
        ..Default::default()
    }
}

impl Cri {
    async fn pull(&mut self, image: &str) -> Result<(), String> {
        self.img
            .pull_image(PullImageRequest {
                image: Some(ImageSpec {
                    image: image.to_string(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .map(|_| ())
            .map_err(|e| format!("PullImage {image}: {}", e.message()))
    }

    async fn run_pod(&mut self, cfg: &PodSandboxConfig, handler: &str) -> Result<String, String> {
        self.rt
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(cfg.clone()),
                runtime_handler: handler.to_string(),
            })
            .await
            .map(|r| r.into_inner().pod_sandbox_id)
            .map_err(|e| format!("RunPodSandbox: {}", e.message()))
    }

    async fn create_start(
        &mut self,
        pod: &str,
        pod_cfg: &PodSandboxConfig,
        cfg: ContainerConfig,
    ) -> Result<String, String> {
        let id = self
            .rt
            .create_container(CreateContainerRequest {
                pod_sandbox_id: pod.to_string(),
                config: Some(cfg),
                sandbox_config: Some(pod_cfg.clone()),
            })
            .await
            .map(|r| r.into_inner().container_id)
            .map_err(|e| format!("CreateContainer: {}", e.message()))?;
        self.rt
            .start_container(StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .map_err(|e| format!("StartContainer: {}", e.message()))?;
        Ok(id)
    }

    async fn exec(&mut self, id: &str, cmd: &[&str]) -> Result<String, String> {
        let r = self
            .rt
            .exec_sync(ExecSyncRequest {
                container_id: id.to_string(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                timeout: 10,
            })
            .await
            .map_err(|e| format!("ExecSync {cmd:?}: {}", e.message()))?
            .into_inner();
        if r.exit_code != 0 {
            return Err(format!(
                "ExecSync {cmd:?} exited {}: {}",
                r.exit_code,
                text(&r.stderr)
            ));
        }
        Ok(text(&r.stdout))
    }

    async fn state(&mut self, id: &str) -> Result<i32, String> {
        self.rt
            .container_status(ContainerStatusRequest {
                container_id: id.to_string(),
                verbose: false,
            })
            .await
            .map_err(|e| format!("ContainerStatus: {}", e.message()))?
            .into_inner()
            .status
            .map(|s| s.state)
            .ok_or_else(|| "ContainerStatus without a status".to_string())
    }

    async fn checkpoint(&mut self, id: &str, archive: &Path) -> Result<(), String> {
        self.rt
            .checkpoint_container(CheckpointContainerRequest {
                container_id: id.to_string(),
                location: archive.display().to_string(),
                timeout: 60,
            })
            .await
            .map(|_| ())
            .map_err(|e| format!("CheckpointContainer: {}", e.message()))
    }

    /// CheckpointContainer; its time goes to `out.checkpoint` when it succeeded.
    async fn timed_checkpoint(
        &mut self,
        id: &str,
        archive: &Path,
        out: &mut Outcome,
    ) -> Result<(), String> {
        let t = Instant::now();
        self.checkpoint(id, archive).await?;
        out.checkpoint = Some(t.elapsed().as_secs_f64());
        Ok(())
    }

    /// The restoring CreateContainer + StartContainer of `cfg` (whose image is a checkpoint)
    /// in `pod`; its time goes to `out.restore` when it succeeded.
    async fn timed_restore(
        &mut self,
        pod: &str,
        pod_cfg: &PodSandboxConfig,
        cfg: ContainerConfig,
        out: &mut Outcome,
    ) -> Result<String, String> {
        let t = Instant::now();
        let id = self
            .create_start(pod, pod_cfg, cfg)
            .await
            .map_err(|e| format!("restore: {e}"))?;
        out.restore = Some(t.elapsed().as_secs_f64());
        Ok(id)
    }

    /// Runs `cmd` in `id` every 100 ms until `accept` takes its output (or the error of its
    /// last try), for up to 20 s; then fails, saying `what` did not happen and what was seen.
    async fn exec_until<T>(
        &mut self,
        id: &str,
        cmd: &[&str],
        what: &str,
        accept: impl Fn(&str) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut last = String::new();
        while Instant::now() < deadline {
            match self.exec(id, cmd).await {
                Ok(s) => match accept(&s) {
                    Some(v) => return Ok(v),
                    None => last = s,
                },
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("{what} within 20 s (last: {})", last.trim()))
    }

    /// Stop and remove a pod (its containers go with it). Errors are reported by the caller's
    /// outcome, never hidden: a pod that cannot be removed fails the scenario.
    async fn remove_pod(&mut self, pod: &str) -> Result<(), String> {
        self.rt
            .stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: pod.to_string(),
            })
            .await
            .map_err(|e| format!("StopPodSandbox: {}", e.message()))?;
        self.rt
            .remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: pod.to_string(),
            })
            .await
            .map(|_| ())
            .map_err(|e| format!("RemovePodSandbox: {}", e.message()))
    }

    /// The counter's "token count", once it has counted to at least `min`.
    async fn count(&mut self, id: &str, min: u64) -> Result<(String, u64), String> {
        let what = format!("the counter did not reach {min}");
        self.exec_until(id, &["cat", "/tmp/count"], &what, |s| {
            let mut it = s.split_whitespace();
            let (t, n) = (it.next()?, it.next()?.parse::<u64>().ok()?);
            (n >= min).then(|| (t.to_string(), n))
        })
        .await
    }
}

/// The outcome of one counter run, as the table shows it.
#[derive(Default)]
struct Outcome {
    checkpoint: Option<f64>,
    restore: Option<f64>,
    error: Option<String>,
}

impl Outcome {
    fn line(&self) -> String {
        let secs = |s: Option<f64>| s.map_or("-".to_string(), |s| format!("{s:.2}s"));
        match &self.error {
            None => format!(
                "pass  checkpoint {} restore {}",
                secs(self.checkpoint),
                secs(self.restore)
            ),
            Some(e) => {
                // One line per run in the table; the whole message is in the test's output.
                let mut e = e.split_whitespace().collect::<Vec<_>>().join(" ");
                if let Some((i, _)) = e.char_indices().nth(400) {
                    e.truncate(i);
                    e.push_str(" ...");
                }
                format!(
                    "FAIL  checkpoint {} restore {}: {e}",
                    secs(self.checkpoint),
                    secs(self.restore)
                )
            }
        }
    }
}

/// Where a restore takes its checkpoint from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RestoreFrom {
    /// The archive CheckpointContainer wrote, named by path as the image.
    Archive,
    /// An OCI image holding that archive, pushed to the registry and pulled through CRI.
    Image,
}

/// A counting container in a pod: checkpoint (archive, container left running), pod removed,
/// restore into a new pod from the archive or from an image holding it; the count goes on
/// from the checkpointed value.
async fn counter_run(
    cri: &mut Cri,
    env: &CriEnv,
    image: &str,
    handler: &str,
    round: usize,
    from: RestoreFrom,
    out: &mut Outcome,
) -> Result<(), String> {
    let dir = env.dir.join("checkpoints");
    let name = match from {
        RestoreFrom::Archive => format!("cri-{handler}-{round}"),
        RestoreFrom::Image => format!("cr-img-{handler}-{round}"),
    };
    let pod_cfg = pod_config(&name);
    let pod = cri.run_pod(&pod_cfg, handler).await?;
    let ctr_cfg = container_config("counter", image, &["/bin/sh", "-c", COUNTER]);
    let id = cri.create_start(&pod, &pod_cfg, ctr_cfg).await?;
    let (token, before) = cri.count(&id, 3).await?;
    let archive = dir.join(format!("{name}.tar"));
    cri.timed_checkpoint(&id, &archive, out).await?;
    if cri.state(&id).await? != CONTAINER_RUNNING {
        return Err("the container stopped at checkpoint (it must be left running)".into());
    }
    let (t_after, after) = cri.count(&id, before + 1).await?;
    if t_after != token {
        return Err(format!("token changed at checkpoint: {token} -> {t_after}"));
    }
    cri.remove_pod(&pod).await?;

    let name2 = format!("{name}-restored");
    let pod_cfg2 = pod_config(&name2);
    let pod2 = cri.run_pod(&pod_cfg2, handler).await?;
    let source = match from {
        RestoreFrom::Archive => archive.display().to_string(),
        RestoreFrom::Image => {
            // The kubelet pulls a pod's image before CreateContainer; so does this test.
            let reference = env.push_checkpoint_image(&archive, &name, "counter")?;
            cri.pull(&reference).await?;
            reference
        }
    };
    let restore_cfg = container_config("counter", &source, &[]);
    let id2 = cri
        .timed_restore(&pod2, &pod_cfg2, restore_cfg, out)
        .await?;
    if from == RestoreFrom::Image {
        // containerd says when it took the image for a checkpoint; an ordinary image would
        // have been started afresh (and fail: the checkpoint image names no command).
        let log = std::fs::read_to_string(env.dir.join("containerd.log")).unwrap_or_default();
        if !log.contains(&format!(
            "Found checkpoint of container counter in {source}"
        )) {
            return Err(format!(
                "containerd did not take {source} for a checkpoint image"
            ));
        }
    }
    let (t2, n2) = cri.count(&id2, before).await?;
    if t2 != token {
        return Err(format!(
            "restored counter has token {t2}, the checkpointed one {token} (started afresh?)"
        ));
    }
    // The restored process goes on from a value the original had between `before` and
    // `after`, so it cannot be far beyond `after` this soon.
    let (_, n3) = cri.count(&id2, n2 + 2).await?;
    if n3 > after + 600 {
        return Err(format!(
            "restored count {n3} is not near the checkpointed {before}..{after}"
        ));
    }
    cri.remove_pod(&pod2).await?;
    Ok(())
}

/// Per scenario and runtime: runs, passes, and the mean seconds of CheckpointContainer and of
/// the restoring CreateContainer + StartContainer over the runs that got that far.
#[derive(Default)]
struct Summary {
    rows: Vec<SummaryRow>,
}

struct SummaryRow {
    scenario: String,
    handler: String,
    runs: usize,
    passes: usize,
    checkpoint: Vec<f64>,
    restore: Vec<f64>,
}

impl Summary {
    fn add(&mut self, scenario: &str, handler: &str, out: &Outcome) {
        let i = match self
            .rows
            .iter()
            .position(|r| r.scenario == scenario && r.handler == handler)
        {
            Some(i) => i,
            None => {
                self.rows.push(SummaryRow {
                    scenario: scenario.to_string(),
                    handler: handler.to_string(),
                    runs: 0,
                    passes: 0,
                    checkpoint: Vec::new(),
                    restore: Vec::new(),
                });
                self.rows.len() - 1
            }
        };
        let r = &mut self.rows[i];
        r.runs += 1;
        r.passes += usize::from(out.error.is_none());
        r.checkpoint.extend(out.checkpoint);
        r.restore.extend(out.restore);
    }

    fn render(&self) -> String {
        if self.rows.is_empty() {
            return String::new();
        }
        let mean = |v: &[f64]| {
            if v.is_empty() {
                "-".to_string()
            } else {
                format!("{:.2}s", v.iter().sum::<f64>() / v.len() as f64)
            }
        };
        let mut s = String::from(
            "summary (scenario, runtime, passed/runs, mean checkpoint and restore seconds through CRI):\n",
        );
        for r in &self.rows {
            let _ = writeln!(
                s,
                "  {:<34} {:<6} {}/{} pass  checkpoint {:<6} restore {}",
                r.scenario,
                r.handler,
                r.passes,
                r.runs,
                mean(&r.checkpoint),
                mean(&r.restore)
            );
        }
        s
    }
}

fn write_table(name: &str, table: &str, summary: &Summary) {
    let table = format!("{table}{}", summary.render());
    println!("{table}");
    eprintln!("{table}");
    // hack/test prints it after the run, where captured test output would hide it.
    let _ = std::fs::write(Path::new(env!("CARGO_TARGET_TMPDIR")).join(name), table);
}

/// How many rounds of each scenario: FERRY_CRI_ROUNDS, else 3.
fn rounds() -> usize {
    std::env::var("FERRY_CRI_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
}

#[test]
fn cri_counter_checkpoint_restore_into_new_pod_runc_and_ferry() {
    if !require_root() {
        return;
    }
    let env = CriEnv::start("ctr");
    let image = env.image();
    let rt = tokio_runtime();
    let mut table = String::new();
    let mut summary = Summary::default();
    let mut failures = Vec::new();
    rt.block_on(async {
        let mut cri = env.client().await;
        for round in 0..rounds() {
            for (scenario, from) in [
                ("counter", RestoreFrom::Archive),
                ("counter-from-image", RestoreFrom::Image),
            ] {
                for handler in RUNTIMES {
                    let mut out = Outcome::default();
                    if let Err(e) =
                        counter_run(&mut cri, &env, &image, handler, round, from, &mut out).await
                    {
                        out.error = Some(e);
                    }
                    let line = out.line();
                    let _ = writeln!(table, "{scenario:<18} round {round:<2} {handler:<6} {line}");
                    summary.add(scenario, handler, &out);
                    // runc is the reference shown beside ferry, not what is under test: its
                    // own occasional CRIU failures (seen: `criu failed: type NOTIFY errno 17`
                    // at restore) show in the table without failing the test.
                    if let (Some(e), "ferry") = (&out.error, handler) {
                        failures.push(format!(
                            "{scenario} {handler} round {round}: {e}\n{}",
                            env.log_excerpt()
                        ));
                    }
                }
            }
        }
    });
    write_table("cri-table.txt", &table, &summary);
    drop(env);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A hostPath volume's propagation, as CRI names it.
#[derive(Clone, Copy)]
enum Propagation {
    Private,
    HostToContainer,
    Bidirectional,
}

impl Propagation {
    fn name(self) -> &'static str {
        match self {
            Propagation::Private => "private",
            Propagation::HostToContainer => "host-to-container",
            Propagation::Bidirectional => "bidirectional",
        }
    }
    fn cri(self) -> MountPropagation {
        match self {
            Propagation::Private => MountPropagation::PropagationPrivate,
            Propagation::HostToContainer => MountPropagation::PropagationHostToContainer,
            Propagation::Bidirectional => MountPropagation::PropagationBidirectional,
        }
    }
}

impl CriEnv {
    /// Run a shell script in containerd's mount namespace: the "host" its pods see.
    fn host(&self, script: &str) -> Result<String, String> {
        let pid = std::fs::read_to_string(self.dir.join("containerd.pid"))
            .map_err(|e| format!("containerd.pid: {e}"))?;
        let out = Command::new("nsenter")
            .args(["-t", pid.trim(), "-m", "--", "sh", "-c", script])
            .output()
            .map_err(|e| format!("nsenter: {e}"))?;
        if !out.status.success() {
            return Err(format!("host script `{script}` failed {}", describe(&out)));
        }
        Ok(text(&out.stdout))
    }
}

/// The container's mounts at and below /vol: mount point, root, type and the propagation
/// fields (shared:N, master:N), which name the host's peer groups the mounts are tied to.
async fn vol_tree(cri: &mut Cri, id: &str) -> Result<Vec<String>, String> {
    let mi = cri.exec(id, &["cat", "/proc/self/mountinfo"]).await?;
    let mut tree: Vec<String> = mi
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let f: Vec<&str> = pre.split(' ').collect();
            let mp = *f.get(4)?;
            if mp != "/vol" && !mp.starts_with("/vol/") {
                return None;
            }
            let fstype = post.split(' ').next().unwrap_or("");
            let opt = f.get(6..).map(|o| o.join(",")).unwrap_or_default();
            Some(format!("{mp} root={} type={fstype} [{opt}]", f.get(3)?))
        })
        .collect();
    tree.sort();
    Ok(tree)
}

/// One hostPath scenario: a counting container with /vol from a shared host mount, with or
/// without a host mount under the volume at checkpoint; checkpoint, remove the pod, restore
/// into a new pod. The restored /vol tree must equal the one before (peer group ties
/// included), a host mount made after restore must reach the container (HostToContainer,
/// Bidirectional), and a container mount must reach the host (Bidirectional).
#[allow(clippy::too_many_arguments)]
async fn volume_run(
    cri: &mut Cri,
    env: &CriEnv,
    image: &str,
    handler: &str,
    prop: Propagation,
    submount: bool,
    round: usize,
    out: &mut Outcome,
) -> Result<(), String> {
    let name = format!(
        "cri-{handler}-{}{}-{round}",
        prop.name(),
        if submount { "-sub" } else { "" }
    );
    // The volume's source: a directory on a shared tmpfs in containerd's mount namespace.
    let src = env.dir.join("vol").join(&name);
    let s = src.display();
    env.host(&format!("mkdir -p {s} && mount -t tmpfs cri-vol {s} && mount --make-shared {s} && mkdir {s}/src {s}/src/sub {s}/src/later"))?;
    if submount {
        env.host(&format!("mount -t tmpfs cri-sub {s}/src/sub"))?;
    }
    let pod_cfg = pod_config(&name);
    let pod = cri.run_pod(&pod_cfg, handler).await?;
    let (cfg, mut restore_cfg) = volume_configs(image, prop, &format!("{s}/src"));
    let id = cri.create_start(&pod, &pod_cfg, cfg).await?;
    let (token, _) = cri.count(&id, 3).await?;
    let before = vol_tree(cri, &id).await?;
    let archive = env.dir.join("checkpoints").join(format!("{name}.tar"));
    cri.timed_checkpoint(&id, &archive, out).await?;
    cri.remove_pod(&pod).await?;

    let name2 = format!("{name}-r");
    let pod_cfg2 = pod_config(&name2);
    let pod2 = cri.run_pod(&pod_cfg2, handler).await?;
    restore_cfg.image = Some(ImageSpec {
        image: archive.display().to_string(),
        ..Default::default()
    });
    let id2 = cri
        .timed_restore(&pod2, &pod_cfg2, restore_cfg, out)
        .await?;
    let (t2, _) = cri.count(&id2, 1).await?;
    if t2 != token {
        return Err(format!("restored token {t2}, checkpointed {token}"));
    }
    let after = vol_tree(cri, &id2).await?;
    if after != before {
        return Err(format!(
            "/vol tree changed:\n  before: {before:?}\n  after:  {after:?}"
        ));
    }
    probe_live_ties(cri, env, &id2, prop, &s.to_string()).await?;
    cri.remove_pod(&pod2).await?;
    Ok(())
}

/// The counting container with `/vol` from `host_path` at propagation `prop`, and the
/// request that restores it: the restored pod's spec carries the same volumes, as the
/// kubelet's would, because containerd takes the mounts from this request, not from the
/// checkpoint.
fn volume_configs(
    image: &str,
    prop: Propagation,
    host_path: &str,
) -> (ContainerConfig, ContainerConfig) {
    let mut cfg = container_config("counter", image, &["/bin/sh", "-c", COUNTER]);
    cfg.mounts = vec![Mount {
        container_path: "/vol".into(),
        host_path: host_path.into(),
        propagation: prop.cri() as i32,
        ..Default::default()
    }];
    if let Propagation::Bidirectional = prop {
        // Mounting inside the container needs CAP_SYS_ADMIN.
        cfg.linux = Some(LinuxContainerConfig {
            security_context: Some(LinuxContainerSecurityContext {
                capabilities: Some(Capability {
                    add_capabilities: vec!["CAP_SYS_ADMIN".into()],
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    let mut restore_cfg = container_config("counter", "", &[]);
    restore_cfg.mounts = cfg.mounts.clone();
    restore_cfg.linux = cfg.linux.clone();
    (cfg, restore_cfg)
}

/// Live probes of the restored volume's ties: a host mount made now under the volume source
/// `s` reaches container `id` (HostToContainer, Bidirectional), and a container mount reaches
/// the host (Bidirectional).
async fn probe_live_ties(
    cri: &mut Cri,
    env: &CriEnv,
    id: &str,
    prop: Propagation,
    s: &str,
) -> Result<(), String> {
    if !matches!(prop, Propagation::Private) {
        env.host(&format!(
            "mount -t tmpfs cri-later {s}/src/later && touch {s}/src/later/from-host"
        ))?;
        cri.exec(id, &["test", "-e", "/vol/later/from-host"])
            .await
            .map_err(|e| {
                format!("a host mount made after restore does not reach the container: {e}")
            })?;
    }
    if let Propagation::Bidirectional = prop {
        cri.exec(
            id,
            &[
                "sh",
                "-c",
                "mkdir -p /vol/cmnt && mount -t tmpfs cri-c /vol/cmnt && touch /vol/cmnt/from-ctr",
            ],
        )
        .await?;
        env.host(&format!("test -e {s}/src/cmnt/from-ctr"))
            .map_err(|e| {
                format!("a container mount made after restore does not reach the host: {e}")
            })?;
    }
    Ok(())
}

/// Run hostPath scenarios (propagation, host submount at checkpoint) with both runtimes for
/// `rounds()` rounds, write the table, and fail on any ferry failure.
fn volume_scenarios(tag: &str, scenarios: &[(Propagation, bool)], table_name: &str) {
    if !require_root() {
        return;
    }
    let env = CriEnv::start(tag);
    let image = env.image();
    let rt = tokio_runtime();
    let mut table = String::new();
    let mut summary = Summary::default();
    let mut failures = Vec::new();
    // FERRY_SCENARIO=<part of a name> runs only the matching scenarios.
    let only = std::env::var("FERRY_SCENARIO").unwrap_or_default();
    rt.block_on(async {
        let mut cri = env.client().await;
        for round in 0..rounds() {
            for &(prop, submount) in scenarios {
                let scenario = format!(
                    "{}{}",
                    prop.name(),
                    if submount { "+hostmount" } else { "" }
                );
                if !scenario.contains(only.as_str()) {
                    continue;
                }
                for handler in RUNTIMES {
                    let mut out = Outcome::default();
                    if let Err(e) = volume_run(
                        &mut cri, &env, &image, handler, prop, submount, round, &mut out,
                    )
                    .await
                    {
                        out.error = Some(e);
                    }
                    let _ = writeln!(
                        table,
                        "{scenario:<30} round {round:<2} {handler:<6} {}",
                        out.line()
                    );
                    summary.add(&scenario, handler, &out);
                    if let (Some(e), "ferry") = (&out.error, handler) {
                        failures.push(format!("{scenario} round {round}: {e}"));
                    }
                }
            }
        }
    });
    write_table(table_name, &table, &summary);
    drop(env);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn cri_hostpath_private_and_host_to_container_runc_and_ferry() {
    volume_scenarios(
        "vol",
        &[
            (Propagation::Private, false),
            (Propagation::HostToContainer, false),
            (Propagation::HostToContainer, true),
        ],
        "cri-volumes-table.txt",
    );
}

/// hostPath volumes that CRIU alone cannot bring back: a Private volume with a host mount
/// below it (still a slave of the host's), and Bidirectional ones (containerd makes the whole
/// rootfs rshared, so the sandbox's /etc/hosts, resolv.conf and hostname binds are peers of
/// the host too). The table goes to target/tmp/cri-volumes-bidirectional-table.txt.
#[test]
fn cri_hostpath_private_submount_and_bidirectional_runc_and_ferry() {
    volume_scenarios(
        "volx",
        &[
            (Propagation::Private, true),
            (Propagation::Bidirectional, false),
            (Propagation::Bidirectional, true),
        ],
        "cri-volumes-bidirectional-table.txt",
    );
}

/// A HostToContainer volume that comes back private, cut off from the host (the intermittent
/// failure once seen under CRI): ferry is asked (FERRY_TEST_FAULT=untie-volumes in the
/// environment containerd hands its shims) to undo its re-tying just before its post-restore
/// check. The check must refuse the restore loudly, naming the volume, the tie it had and
/// what it got, and leave the pod removable. runc, which ignores the variable, restores as
/// usual. Returns what the table shows.
async fn untied_volume_run(
    cri: &mut Cri,
    env: &CriEnv,
    image: &str,
    handler: &str,
    out: &mut Outcome,
) -> Result<String, String> {
    let name = format!("cr-untied-{handler}");
    let src = env.dir.join("vol").join(&name);
    let s = src.display();
    env.host(&format!(
        "mkdir -p {s} && mount -t tmpfs cri-vol {s} && mount --make-shared {s} && mkdir {s}/src"
    ))?;
    let pod_cfg = pod_config(&name);
    let pod = cri.run_pod(&pod_cfg, handler).await?;
    let mut cfg = container_config("counter", image, &["/bin/sh", "-c", COUNTER]);
    cfg.mounts = vec![Mount {
        container_path: "/vol".into(),
        host_path: format!("{s}/src"),
        propagation: MountPropagation::PropagationHostToContainer as i32,
        ..Default::default()
    }];
    let mut restore_cfg = container_config("counter", "", &[]);
    restore_cfg.mounts = cfg.mounts.clone();
    let id = cri.create_start(&pod, &pod_cfg, cfg).await?;
    cri.count(&id, 3).await?;
    let before = vol_tree(cri, &id).await?;
    if !before
        .iter()
        .any(|l| l.starts_with("/vol ") && l.contains("master:"))
    {
        return Err(format!(
            "/vol is not a slave of the host's mount before checkpoint: {before:?}"
        ));
    }
    let archive = env.dir.join("checkpoints").join(format!("{name}.tar"));
    cri.timed_checkpoint(&id, &archive, out).await?;
    cri.remove_pod(&pod).await?;

    let pod_cfg2 = pod_config(&format!("{name}-r"));
    let pod2 = cri.run_pod(&pod_cfg2, handler).await?;
    restore_cfg.image = Some(ImageSpec {
        image: archive.display().to_string(),
        ..Default::default()
    });
    let t = Instant::now();
    let restored = cri.create_start(&pod2, &pod_cfg2, restore_cfg).await;
    out.restore = Some(t.elapsed().as_secs_f64());
    let seen = match restored {
        Ok(id2) => {
            let after = vol_tree(cri, &id2).await?;
            format!("restored, /vol now {after:?} (was {before:?})")
        }
        Err(e) => format!(
            "restore refused: {}",
            e.split_whitespace().collect::<Vec<_>>().join(" ")
        ),
    };
    // The failed restore leaves nothing the pod's removal cannot take.
    cri.remove_pod(&pod2).await?;
    Ok(seen)
}

#[test]
fn cri_host_to_container_volume_restored_private_fails_restore() {
    if !require_root() {
        return;
    }
    let env = CriEnv::start_with("untied", &[("FERRY_TEST_FAULT", "untie-volumes")]);
    let image = env.image();
    let rt = tokio_runtime();
    let mut table = String::new();
    let mut failures = Vec::new();
    rt.block_on(async {
        let mut cri = env.client().await;
        for handler in RUNTIMES {
            let mut out = Outcome::default();
            let seen = untied_volume_run(&mut cri, &env, &image, handler, &mut out).await;
            let line = match &seen {
                Ok(s) => s.clone(),
                Err(e) => format!("FAIL: {e}"),
            };
            let _ = writeln!(
                table,
                "host-to-container, volume made private before ferry's check  {handler:<6} {line}"
            );
            if handler != "ferry" {
                continue;
            }
            match seen {
                Ok(s)
                    if s.starts_with("restore refused")
                        && s.contains("lost 1 tie(s) to the host's mounts")
                        && s.contains("/vol: was slave of")
                        && s.contains("is private (no tie)") => {}
                Ok(s) => failures.push(format!(
                    "ferry must refuse a restore whose volume lost its tie to the host: {s}"
                )),
                Err(e) => failures.push(e),
            }
        }
    });
    write_table("cri-untied-table.txt", &table, &Summary::default());
    drop(env);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Inside the pod, one process sends a numbered line every 0.1 s over an established TCP
/// connection on the pod's loopback to another, which writes them to /tmp/recv.
/// (busybox's nc ends a connection when its standard input ends: the listener's is a pipe
/// that never does.) The sender connects once the listener listens.
fn tcp_pair() -> String {
    format!(
        "sleep 1000000 | nc -l -p 7000 > /tmp/recv & {}; i=0; \
         while :; do i=$((i+1)); echo $i; sleep 0.1; done | nc 127.0.0.1 7000 > /dev/null",
        listening(7000)
    )
}

/// Lines received so far, once there are at least `min`.
async fn received(cri: &mut Cri, id: &str, min: u64) -> Result<u64, String> {
    let what = format!("fewer than {min} lines arrived over the connection");
    cri.exec_until(id, &["sh", "-c", "wc -l < /tmp/recv"], &what, |s| {
        s.trim().parse::<u64>().ok().filter(|n| *n >= min)
    })
    .await
}

/// Whether the pod holds an ESTABLISHED TCP connection to port 7000 (1B58).
async fn established(cri: &mut Cri, id: &str) -> Result<bool, String> {
    let tcp = cri.exec(id, &["cat", "/proc/net/tcp"]).await?;
    Ok(tcp.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 3 && f[3] == "01" && (f[1].ends_with(":1B58") || f[2].ends_with(":1B58"))
    }))
}

/// An established TCP connection in a pod: checkpoint with CRIU's tcp-established (through
/// the `org.criu.config` annotation), pod removed, restore into a new pod: the connection is
/// ESTABLISHED again and carries data.
async fn tcp_run(
    cri: &mut Cri,
    env: &CriEnv,
    image: &str,
    handler: &str,
    round: usize,
    out: &mut Outcome,
) -> Result<(), String> {
    let name = format!("cri-{handler}-tcp-{round}");
    let conf = env.dir.join("criu-tcp.conf");
    std::fs::write(&conf, "tcp-established\n").map_err(|e| format!("{}: {e}", conf.display()))?;
    let annotations: std::collections::HashMap<String, String> =
        [("org.criu.config".to_string(), conf.display().to_string())].into();
    let pod_cfg = pod_config(&name);
    let pod = cri.run_pod(&pod_cfg, handler).await?;
    let mut cfg = container_config("tcp", image, &["/bin/sh", "-c", &tcp_pair()]);
    cfg.annotations = annotations.clone();
    let id = cri.create_start(&pod, &pod_cfg, cfg).await?;
    let before = received(cri, &id, 3).await?;
    if !established(cri, &id).await? {
        return Err("no ESTABLISHED connection before checkpoint".into());
    }
    let archive = env.dir.join("checkpoints").join(format!("{name}.tar"));
    cri.timed_checkpoint(&id, &archive, out).await?;
    cri.remove_pod(&pod).await?;

    let pod_cfg2 = pod_config(&format!("{name}-r"));
    let pod2 = cri.run_pod(&pod_cfg2, handler).await?;
    let mut restore_cfg = container_config("tcp", &archive.display().to_string(), &[]);
    restore_cfg.annotations = annotations;
    let id2 = cri
        .timed_restore(&pod2, &pod_cfg2, restore_cfg, out)
        .await?;
    let n = received(cri, &id2, before).await?;
    received(cri, &id2, n + 5)
        .await
        .map_err(|e| format!("the restored connection carries no data: {e}"))?;
    if !established(cri, &id2).await? {
        return Err("the restored connection is not ESTABLISHED".into());
    }
    cri.remove_pod(&pod2).await?;
    Ok(())
}

#[test]
fn cri_tcp_connection_checkpoint_restore_runc_and_ferry() {
    if !require_root() {
        return;
    }
    let env = CriEnv::start("tcp");
    let image = env.image();
    let rt = tokio_runtime();
    // CRIU 4.1 cannot dump IP sockets on current kernels: hack/cri-env puts 4.2 or newer
    // first on containerd's PATH, for runc and ferry alike.
    let (criu, version) = env.criu().unwrap_or_else(|e| panic!("{e}"));
    let newer = version
        .trim_start_matches("Version:")
        .trim()
        .split('.')
        .map(|n| n.parse::<u32>().unwrap_or(0))
        .take(2)
        .collect::<Vec<_>>()
        >= vec![4, 2];
    assert!(
        newer,
        "containerd's runtimes would run {} ({version}): CRIU 4.2 or newer is needed",
        criu.display()
    );
    let mut table = format!("CRIU for both runtimes: {} ({version})\n", criu.display());
    let mut summary = Summary::default();
    let mut failures = Vec::new();
    rt.block_on(async {
        let mut cri = env.client().await;
        for round in 0..rounds() {
            for handler in RUNTIMES {
                let mut out = Outcome::default();
                if let Err(e) = tcp_run(&mut cri, &env, &image, handler, round, &mut out).await {
                    out.error = Some(e);
                }
                let _ = writeln!(
                    table,
                    "tcp     round {round:<2} {handler:<6} {}",
                    out.line()
                );
                summary.add("tcp", handler, &out);
                if let (Some(e), "ferry") = (&out.error, handler) {
                    failures.push(format!("round {round}: {e}"));
                }
            }
        }
    });
    write_table("cri-tcp-table.txt", &table, &summary);
    drop(env);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
