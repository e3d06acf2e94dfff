#!/usr/bin/env bash
# A throwaway OpenLDAP directory on loopback, for the directory tests (tests/it/ldap_directory.rs)
# and benchmark (tessera-dirbench): Debian's slapd configured from LDIF, dc=example,dc=com with
# ou=people, ou=services and ou=groups, a service account, an MFA group, the memberOf overlay,
# userPassword readable by nobody (binds only), and every bind logged (olcLogLevel stats).
#
#   scripts/lib/slapd.sh DIR LDAP_PORT LDAPS_PORT
#
# DIR must hold cert.pem and key.pem (the TLS certificate for 127.0.0.1 and its key). The script
# writes DIR/config, DIR/data and DIR/base.ldif (the base entries, for ldapadd as
# cn=admin,dc=example,dc=com with password admin-pw once slapd answers), then runs slapd in the
# foreground with ldap:// (StartTLS available) and ldaps:// on the given ports; binds go to stderr.
set -euo pipefail
dir=$1 plain=$2 secure=$3
mkdir -p "$dir/config" "$dir/data"
cat > "$dir/config.ldif" <<EOF
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: $dir/slapd.pid
olcLogLevel: stats
olcTLSCertificateFile: $dir/cert.pem
olcTLSCertificateKeyFile: $dir/key.pem

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb
olcModuleLoad: memberof

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif

include: file:///etc/ldap/schema/cosine.ldif

include: file:///etc/ldap/schema/inetorgperson.ldif

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcDbDirectory: $dir/data
olcDbMaxSize: 1073741824
olcSuffix: dc=example,dc=com
olcRootDN: cn=admin,dc=example,dc=com
olcRootPW: admin-pw
olcDbIndex: uid eq
olcAccess: {0}to attrs=userPassword by anonymous auth by * none
olcAccess: {1}to * by users read by * none

dn: olcOverlay={0}memberof,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {0}memberof
olcMemberOfRefInt: TRUE
EOF
cat > "$dir/base.ldif.tmp" <<'EOF'
dn: dc=example,dc=com
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: ou=services,dc=example,dc=com
objectClass: organizationalUnit
ou: services

dn: ou=groups,dc=example,dc=com
objectClass: organizationalUnit
ou: groups

dn: cn=tessera,ou=services,dc=example,dc=com
objectClass: inetOrgPerson
cn: tessera
sn: service
userPassword: service-pw

dn: cn=mfa-users,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: mfa-users
member: cn=tessera,ou=services,dc=example,dc=com
EOF
mv "$dir/base.ldif.tmp" "$dir/base.ldif"
/usr/sbin/slapadd -n 0 -F "$dir/config" -l "$dir/config.ldif"
exec /usr/sbin/slapd -h "ldap://127.0.0.1:$plain/ ldaps://127.0.0.1:$secure/" -F "$dir/config" -d 256
