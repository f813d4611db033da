# Tests of the postgres scripts' pure helpers: `nu tests/test_postgres.nu`
use std/assert
use ../scripts/install.nu [package-names pick-manager]
use ../scripts/configure.nu [hba-line conf-overrides create-database-sql]
use ../scripts/check.nu [parse-version isready-status]
use ../scripts/uninstall.nu [remove-command]

def "test packages" [] {
    assert equal (package-names "apt-get" 16) ["postgresql-16" "postgresql-client-16"]
    assert equal (package-names "dnf" 15 | first) "postgresql15-server"
    assert error { package-names "zypper" 16 }
    assert equal (pick-manager ["yum" "apt-get"]) "apt-get"
}

def "test configuration" [] {
    assert equal (hba-line {type: "local", database: "all", user: "postgres", method: "peer"}) "local\tall\tpostgres\tpeer"
    assert equal (hba-line {type: "hostssl", database: "app", user: "app", address: "10.0.0.0/16", method: "scram-sha-256"}) "hostssl\tapp\tapp\t10.0.0.0/16\tscram-sha-256"
    let conf = (conf-overrides {listen_addresses: ["localhost" "10.0.0.5"], port: 5432, max_connections: 200, shared_buffers: "1GB", effective_cache_size: "3GB", wal_level: "replica", ssl: true})
    assert str contains $conf "listen_addresses = 'localhost,10.0.0.5'"
    assert str contains $conf "ssl = on"
    assert str contains (create-database-sql {name: "app", owner: "app", encoding: "UTF8"}) "CREATE DATABASE app OWNER app"
}

def "test check and uninstall" [] {
    assert equal (parse-version "psql (PostgreSQL) 16.1 (Debian 16.1-1.pgdg120+1)") "16.1"
    assert equal (isready-status 2) "no response"
    assert equal (remove-command "apt-get" 16 true) ["apt-get" "purge" "-y" "postgresql-16"]
    assert equal (remove-command "apt-get" 16 false | get 1) "remove"
}

def main [] {
    test packages
    test configuration
    test check and uninstall
    print "postgres: 3 tests passed"
}
