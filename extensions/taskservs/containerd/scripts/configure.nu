#!/usr/bin/env nu
# Write containerd's config.toml from the taskserv settings (JSON or YAML from the core).

# Settings used when the core passes none (the Containerd schema's defaults).
export def default-settings []: nothing -> record {
    {
        root_dir: "/var/lib/containerd"
        state_dir: "/run/containerd"
        systemd_cgroup: true
        sandbox_image: "localhost:5000/pause:3.9"
        snapshotter: "overlayfs"
        max_concurrent_downloads: 3
        mirrors: []
    }
}

# containerd's configuration (version 2 schema) as a record.
export def build-config [s: record]: nothing -> record {
    let cri = "io.containerd.grpc.v1.cri"
    let mirrors = ($s.mirrors | reduce --fold {} {|m, acc| $acc | insert $m.host {endpoint: $m.endpoints} })
    {
        version: 2
        root: $s.root_dir
        state: $s.state_dir
        plugins: {
            $cri: {
                sandbox_image: $s.sandbox_image
                max_concurrent_downloads: $s.max_concurrent_downloads
                containerd: {
                    snapshotter: $s.snapshotter
                    runtimes: {runc: {runtime_type: "io.containerd.runc.v2", options: {SystemdCgroup: $s.systemd_cgroup}}}
                }
                registry: {mirrors: $mirrors}
            }
        }
    }
}

def main [
    --settings: path                             # JSON or YAML with overrides
    --config: path = "/etc/containerd/config.toml"  # file to write
    --dry-run                                    # print the file instead of writing it
] {
    let overrides = if $settings == null { {} } else { open $settings }
    let text = (build-config ((default-settings) | merge $overrides) | to toml)
    if $dry_run {
        print $text
    } else {
        mkdir ($config | path dirname)
        $text | save --force $config
        ^systemctl restart containerd
        print $"wrote ($config)"
    }
}
