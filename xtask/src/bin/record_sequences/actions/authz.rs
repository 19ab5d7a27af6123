//! The authorization actions: dockerd started with `--authorization-plugin`, its
//! AuthZReq/AuthZRes calls for API calls made by the CLI and by curl, over the socket
//! and over TLS.

use super::*;

pub(super) const ACTIONS: &[Action] = &[
    Action {
        name: "authz_calls",
        description: "dockerd --authorization-plugin=rec-authz (the recorder allows every API \
                      call but those marked rec-authz-deny): each call goes AuthZReq, then \
                      AuthZRes; docker volume ls; a volume create (its JSON body); HEAD /_ping \
                      (curl); a docker create whose body is over 1 MiB (an --env-file); a \
                      chunked JSON body (curl; the CLI sends JSON with a length); a denied \
                      volume create",
        plugins: &[authz_plugin("rec-authz")],
        bundles: &[],
        image: true,
        setup: &[&[WRITE_ENV_FILE, "{tmp}/big.env", "1100000"]],
        commands: &[
            &["volume", "ls"],
            &["volume", "create", "--label", "a=b", "v1"],
            &[CURL, "-sS", "-I", "http://localhost/_ping"],
            &[
                "create",
                "--name",
                "big",
                "--env-file",
                "{tmp}/big.env",
                IMAGE,
                "true",
            ],
            &[
                CURL,
                "-sS",
                // The status only: the volume's CreatedAt changes from run to run.
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
                "-H",
                "Transfer-Encoding: chunked",
                "--data-binary",
                r#"{"Name":"chunked"}"#,
                "http://localhost/v1.41/volumes/create",
            ],
            &["volume", "create", "rec-authz-deny-x"],
        ],
        failing: &[5],
        tls: false,
    },
    Action {
        name: "authz_tls",
        description: "dockerd --authorization-plugin=rec-authz --tlsverify on a loopback \
                      port: docker volume ls over TLS with a client certificate whose subject \
                      has two common names (CN=team,O=example,CN=alice: dockerd sends the \
                      last as User), then without TLS on the private socket",
        plugins: &[authz_plugin("rec-authz")],
        bundles: &[],
        image: false,
        setup: &[],
        commands: &[&[TLS_DOCKER, "volume", "ls"], &["volume", "ls"]],
        failing: &[],
        tls: true,
    },
];
