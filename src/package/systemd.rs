//! systemd units for a socket-activated plugin: systemd owns
//! `/run/docker/plugins/NAME.sock` and starts the plugin on dockerd's first call.
//!
//! ```
//! use docker_plugin_sdk::package::systemd::Units;
//!
//! let units = Units::new("localvol", "/usr/local/bin/localvol --systemd");
//! assert!(units.socket().contains("ListenStream=/run/docker/plugins/localvol.sock\n"));
//! assert!(units.service().contains("ExecStart=/usr/local/bin/localvol --systemd\n"));
//! assert_eq!(units.file_names(), ["localvol.service", "localvol.socket"]);
//! ```

use std::path::{Path, PathBuf};

use crate::transport::DEFAULT_SOCKET_DIR;

/// The `.service` and `.socket` units of one plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Units {
    name: String,
    exec: String,
    description: String,
}

impl Units {
    /// Units for plugin `name` (socket `NAME.sock`), started as `exec` (the program
    /// and its arguments, which should make it serve the socket systemd passes, e.g.
    /// `--systemd`).
    pub fn new(name: impl Into<String>, exec: impl Into<String>) -> Self {
        let name = name.into();
        Self {
            description: format!("Docker plugin {name}"),
            name,
            exec: exec.into(),
        }
    }

    /// Replaces the `Description=` of both units.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// `NAME.service` and `NAME.socket`.
    pub fn file_names(&self) -> [String; 2] {
        [
            format!("{}.service", self.name),
            format!("{}.socket", self.name),
        ]
    }

    /// The `.socket` unit.
    pub fn socket(&self) -> String {
        format!(
            "[Unit]\n\
             Description={description} (socket)\n\
             Before=docker.service\n\
             PartOf={name}.service\n\
             \n\
             [Socket]\n\
             ListenStream={dir}/{name}.sock\n\
             SocketMode=0660\n\
             SocketUser=root\n\
             SocketGroup=root\n\
             \n\
             [Install]\n\
             WantedBy=sockets.target\n",
            description = self.description,
            name = self.name,
            dir = DEFAULT_SOCKET_DIR,
        )
    }

    /// The `.service` unit.
    pub fn service(&self) -> String {
        format!(
            "[Unit]\n\
             Description={description}\n\
             Documentation=https://docs.docker.com/engine/extend/plugin_api/\n\
             Before=docker.service\n\
             Requires={name}.socket\n\
             After={name}.socket network-online.target\n\
             \n\
             [Service]\n\
             Type=notify\n\
             ExecStart={exec}\n\
             Restart=on-failure\n\
             \n\
             [Install]\n\
             WantedBy=multi-user.target\n\
             Also={name}.socket\n",
            description = self.description,
            name = self.name,
            exec = self.exec,
        )
    }

    /// Writes both units into `dir` (e.g. `/etc/systemd/system`) and returns their
    /// paths.
    pub fn write(&self, dir: &Path) -> std::io::Result<[PathBuf; 2]> {
        let [service, socket] = self.file_names();
        let (service, socket) = (dir.join(service), dir.join(socket));
        std::fs::create_dir_all(dir)?;
        std::fs::write(&service, self.service())?;
        std::fs::write(&socket, self.socket())?;
        Ok([service, socket])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_order_before_docker_and_point_at_each_other() {
        let units = Units::new("p", "/usr/bin/p --systemd").description("P volumes");
        let socket = units.socket();
        let service = units.service();
        assert!(
            socket.contains("Description=P volumes (socket)\n"),
            "{socket}"
        );
        assert!(socket.contains("Before=docker.service\n"), "{socket}");
        assert!(
            socket.contains("ListenStream=/run/docker/plugins/p.sock\n"),
            "{socket}"
        );
        assert!(socket.contains("WantedBy=sockets.target\n"), "{socket}");
        assert!(service.contains("Requires=p.socket\n"), "{service}");
        assert!(service.contains("Before=docker.service\n"), "{service}");
        assert!(service.contains("Type=notify\n"), "{service}");
        assert!(service.contains("Also=p.socket\n"), "{service}");
    }

    #[test]
    fn write_puts_both_files_in_the_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let units = Units::new("p", "/usr/bin/p");
        let [service, socket] = units.write(dir.path()).expect("write");
        assert_eq!(
            std::fs::read_to_string(service).expect("read"),
            units.service()
        );
        assert_eq!(
            std::fs::read_to_string(socket).expect("read"),
            units.socket()
        );
    }
}
