//! Redis deployments of a test's own, started from the machine's `redis-server`: a standalone
//! server, a Cluster of three primaries and a primary watched by one Sentinel. Each lives in a temporary directory
//! on free ports and is killed when dropped.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Redis processes started by a test.
pub struct RedisServers {
    /// The data ports of the processes (the Sentinel's last, when there is one).
    pub ports: Vec<u16>,
    children: Vec<Child>,
    _dir: tempfile::TempDir,
}

impl Drop for RedisServers {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A port that is free now, with port + 10000 (a Cluster node's bus port) free too.
fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

fn spawn(dir: &Path, args: &[String]) -> Child {
    Command::new("redis-server")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server is installed on these machines")
}

/// `redis-cli -p PORT ARGS…`'s output.
pub fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .expect("redis-cli is installed on these machines");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits up to 20 s until `ready` holds.
fn wait_until(what: &str, ready: impl Fn() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what} not ready within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn server_args(port: u16) -> Vec<String> {
    [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    .map(str::to_string)
    .to_vec()
}

impl RedisServers {
    /// A Cluster of three primaries with every slot assigned.
    pub fn cluster() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let children = ports
            .iter()
            .map(|&port| {
                let mut args = server_args(port);
                let conf = format!("nodes-{port}.conf");
                args.extend(["--cluster-enabled", "yes", "--cluster-config-file", &conf].map(str::to_string));
                spawn(dir.path(), &args)
            })
            .collect();
        let servers = RedisServers {
            ports: ports.clone(),
            children,
            _dir: dir,
        };
        for &port in &ports {
            wait_until("a cluster node", || cli(port, &["ping"]).contains("PONG"));
        }
        let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let mut create = vec!["--cluster", "create"];
        create.extend(nodes.iter().map(String::as_str));
        create.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        cli(ports[0], &create);
        for &port in &ports {
            wait_until("the cluster", || {
                cli(port, &["cluster", "info"]).contains("cluster_state:ok")
            });
        }
        servers
    }

    /// One standalone primary (for tests that stop it or cut its connections).
    pub fn standalone() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let children = vec![spawn(dir.path(), &server_args(port))];
        wait_until("the server", || cli(port, &["ping"]).contains("PONG"));
        RedisServers {
            ports: vec![port],
            children,
            _dir: dir,
        }
    }

    /// Stops every process now.
    pub fn stop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A primary and one Sentinel monitoring it as `mymaster`.
    pub fn sentinel() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (primary, sentinel) = (free_port(), free_port());
        let mut children = vec![spawn(dir.path(), &server_args(primary))];
        wait_until("the primary", || cli(primary, &["ping"]).contains("PONG"));
        let conf = dir.path().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {sentinel}\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 {primary} 1\n\
                 sentinel down-after-milliseconds mymaster 1000\n"
            ),
        )
        .unwrap();
        children.push(spawn(
            dir.path(),
            &[conf.display().to_string(), "--sentinel".to_string()],
        ));
        wait_until("the sentinel", || {
            cli(sentinel, &["sentinel", "get-master-addr-by-name", "mymaster"]).contains(&primary.to_string())
        });
        RedisServers {
            ports: vec![primary, sentinel],
            children,
            _dir: dir,
        }
    }
}
