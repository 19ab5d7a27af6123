//! A REAL OpenSSH server on loopback for the tests: Debian's `/usr/sbin/sshd` (package
//! openssh-server, installed by `scripts/install-test-deps`) on a spare port, with a
//! host key and a client key generated for the test, a user with a password made for
//! it (`useradd` + `chpasswd`, deleted on drop), and a known_hosts file naming the
//! host key. sshd runs in the foreground (`-D`) as the test's child and is killed on
//! drop. Needs root.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running sshd, its keys and its password user.
pub struct Sshd {
    /// The port on 127.0.0.1.
    pub port: u16,
    /// The password user's name.
    pub user: String,
    /// The password user's password.
    pub password: String,
    /// A directory (mode 0755) for remote data: `remote(name)` gives one per test.
    dir: PathBuf,
    child: Child,
    _temp: tempfile::TempDir,
}

/// Runs `program args`, which must succeed.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A port nobody listens on now.
pub fn spare_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Sshd {
    /// Starts sshd with a new user `user` (password login) and the client key
    /// accepted for root.
    pub fn start(user: &str) -> Self {
        let temp = tempfile::Builder::new()
            .prefix("dps-sshd-")
            .tempdir()
            .unwrap();
        let dir = temp.path().to_path_buf();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let key = |name: &str| {
            let path = dir.join(name);
            run(
                "ssh-keygen",
                &[
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    name,
                    "-f",
                    path.to_str().unwrap(),
                ],
            );
            path
        };
        key("host_key");
        let client = key("client_key");
        // The key logs in as root only: the password user needs its password.
        fs::create_dir_all(dir.join("authorized_keys")).unwrap();
        fs::copy(
            client.with_extension("pub"),
            dir.join("authorized_keys/root"),
        )
        .unwrap();
        // Privilege separation directory (Debian's unit makes it).
        fs::create_dir_all("/run/sshd").unwrap();
        let port = spare_port();
        let config = dir.join("sshd_config");
        fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile none\n\
                 AuthorizedKeysFile {d}/authorized_keys/%u\nStrictModes no\n\
                 PasswordAuthentication yes\nKbdInteractiveAuthentication no\nUsePAM no\n\
                 PermitRootLogin yes\nSubsystem sftp internal-sftp\n",
                d = dir.display()
            ),
        )
        .unwrap();
        let password = format!("pw-{}-secret", std::process::id());
        let _ = Command::new("userdel").arg(user).output();
        run(
            "useradd",
            &["-M", "-d", dir.to_str().unwrap(), "-s", "/bin/sh", user],
        );
        let mut chpasswd = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        writeln!(chpasswd.stdin.take().unwrap(), "{user}:{password}").unwrap();
        assert!(chpasswd.wait().unwrap().success());
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("sshd.log")).unwrap())
            .spawn()
            .unwrap();
        let sshd = Self {
            port,
            user: user.to_owned(),
            password,
            dir,
            child,
            _temp: temp,
        };
        // A daemon's start: generous, for CI's loaded two cores.
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "sshd did not listen within 60 s: {}",
                sshd.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        sshd
    }

    /// The client's private key (accepted for root).
    pub fn client_key(&self) -> PathBuf {
        self.dir.join("client_key")
    }

    /// A known_hosts line for this server's key.
    pub fn known_hosts_line(&self) -> String {
        let public = fs::read_to_string(self.dir.join("host_key.pub")).unwrap();
        let mut fields = public.split_whitespace();
        let (kind, key) = (fields.next().unwrap(), fields.next().unwrap());
        format!("[127.0.0.1]:{} {kind} {key}\n", self.port)
    }

    /// A new remote directory `name`, owned by the password user: the server side.
    pub fn remote(&self, name: &str) -> PathBuf {
        let path = self.dir.join("remote").join(name);
        fs::create_dir_all(&path).unwrap();
        fs::set_permissions(self.dir.join("remote"), fs::Permissions::from_mode(0o755)).unwrap();
        run("chown", &[&self.user, path.to_str().unwrap()]);
        path
    }

    /// What sshd logged.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = Command::new("userdel").arg(&self.user).output();
    }
}
