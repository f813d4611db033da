#!/usr/bin/env nu
# Apply the taskserv settings: postgresql.conf overrides, pg_hba.conf and databases.

# One pg_hba.conf line from a rule.
export def hba-line [rule: record]: nothing -> string {
    let address = ($rule.address? | default "")
    [$rule.type $rule.database $rule.user $address $rule.method] | where {|f| $f != "" } | str join "\t"
}

# The overrides written to conf.d/provisioning.conf.
export def conf-overrides [s: record]: nothing -> string {
    [
        $"listen_addresses = '($s.listen_addresses | str join ',')'"
        $"port = ($s.port)"
        $"max_connections = ($s.max_connections)"
        $"shared_buffers = '($s.shared_buffers)'"
        $"effective_cache_size = '($s.effective_cache_size)'"
        $"wal_level = ($s.wal_level)"
        $"ssl = (if $s.ssl { 'on' } else { 'off' })"
    ] | str join "\n"
}

# SQL that creates a database and its owner unless they exist (psql's \gexec).
export def create-database-sql [db: record]: nothing -> string {
    [
        $"SELECT 'CREATE ROLE ($db.owner) LOGIN' WHERE NOT EXISTS \(SELECT FROM pg_roles WHERE rolname = '($db.owner)'\)\\gexec"
        $"SELECT 'CREATE DATABASE ($db.name) OWNER ($db.owner) ENCODING ''($db.encoding)''' WHERE NOT EXISTS \(SELECT FROM pg_database WHERE datname = '($db.name)'\)\\gexec"
    ] | str join "\n"
}

def main [
    --settings: path                    # JSON or YAML with the Postgres schema's values
    --conf-dir: path = "/etc/postgresql/16/main"  # postgresql.conf's folder
    --dry-run                           # print the files and SQL instead of applying them
] {
    if $settings == null { error make {msg: "--settings is required"} }
    let s = (open $settings)
    let conf = (conf-overrides $s)
    let hba = ($s.hba_rules | each {|r| hba-line $r } | str join "\n")
    let sql = ($s.databases | each {|d| create-database-sql $d } | str join "\n")
    if $dry_run {
        print $conf
        print $hba
        print $sql
        return
    }
    mkdir ($conf_dir | path join "conf.d")
    $conf | save --force ($conf_dir | path join "conf.d" "provisioning.conf")
    $"# written by provisioning\n($hba)\n" | save --force ($conf_dir | path join "pg_hba.conf")
    ^systemctl reload postgresql
    if ($sql | is-not-empty) { $sql | ^sudo -u postgres psql -v ON_ERROR_STOP=1 }
}
