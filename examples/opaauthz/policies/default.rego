# opaauthz's default policy, packaged at /etc/opaauthz/authz.rego: every API call is
# allowed except creating a privileged container or one that binds the host's root
# directory (however the path is spelled: BindMounts' Resolved follows symlinks and
# `..`). Replace it with your own: opa-docker-authz policies run unchanged.
package docker.authz

default allow := false

allow if {
	not privileged
	not binds_host_root
}

privileged if input.Body.HostConfig.Privileged == true

# `input.BindMounts[_]`, not `some mount in input.BindMounts`: BindMounts is null
# when there are none, and regorus (unlike OPA) fails on `some .. in null`.
binds_host_root if input.BindMounts[_].Resolved == "/"
