//! A throw-away registry for the actions that need one (`docker plugin upgrade` pulls
//! the new version from a registry): Debian's `docker-registry` (distribution 2.x) on a
//! free loopback port (dockerd talks plain HTTP to loopback registries), started by the
//! pseudo-command `@start-registry` and stopped with the action. Its address replaces
//! `{registry}` in commands and reads `<registry>` in fixtures.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

pub(crate) struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub(crate) addr: String,
}

impl Registry {
    /// Starts a registry keeping its data and log in `dir`.
    pub(crate) fn start(dir: &Path) -> Result<Self, String> {
        let program = ["/usr/bin/docker-registry", "/usr/sbin/docker-registry"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .ok_or("docker-registry is not installed (run scripts/install-test-deps)")?;
        let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
        fs::create_dir_all(dir).map_err(|e| io("registry dir", e))?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| io("a free port", e))?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.join("data").display()
            ),
        )
        .map_err(|e| io("config.yml", e))?;
        let log = fs::File::create(dir.join("registry.log")).map_err(|e| io("registry.log", e))?;
        let child = Command::new(program)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| io("registry.log", e))?)
            .stderr(log)
            .spawn()
            .map_err(|e| io(program, e))?;
        let mut registry = Self { child, addr };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if TcpStream::connect(&registry.addr).is_ok() {
                return Ok(registry);
            }
            if let Ok(Some(status)) = registry.child.try_wait() {
                return Err(format!("docker-registry exited with {status}"));
            }
            thread::sleep(Duration::from_millis(100));
        }
        Err("docker-registry did not answer within 20 s".into())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
