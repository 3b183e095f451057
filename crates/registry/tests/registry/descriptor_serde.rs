//! The stored descriptor format (moved here from provider-api, which keeps
//! no dev-dependencies).

use provisioning_provider_api::{MemberSpec, ProviderDescriptor, ProviderKind, ProviderSnapshot};

#[test]
fn descriptor_serde_key_order_and_defaults() {
    let line = r#"{"id":"consul-a","kind":"consul","priority":20,"endpoints":["http://127.0.0.1:8500"],"auth":{"token":"env:CONSUL_HTTP_TOKEN"},"watch":{"consistency":"default","passing":true,"service":"app","wait":"4s"},"enabled":true}"#;
    let d: ProviderDescriptor = serde_json::from_str(line).unwrap();
    assert_eq!(d.kind, ProviderKind::Consul);
    assert_eq!(serde_json::to_string(&d).unwrap(), line);
    let minimal: ProviderDescriptor =
        serde_json::from_str(r#"{"id":"local","kind":"in_memory","priority":0}"#).unwrap();
    assert!(minimal.enabled);
    assert_eq!(
        serde_json::to_string(&minimal).unwrap(),
        r#"{"id":"local","kind":"in_memory","priority":0,"enabled":true}"#
    );
}

#[test]
fn descriptor_rejects_unknown_keys_and_inline_secrets() {
    let unknown =
        serde_json::from_str::<ProviderDescriptor>(r#"{"id":"a","kind":"etcd","prioirty":1}"#);
    assert!(unknown.unwrap_err().to_string().contains("prioirty"));
    let nested = serde_json::from_str::<ProviderDescriptor>(
        r#"{"id":"a","kind":"etcd","priority":1,"auth":{"tokn":"env:X"}}"#,
    );
    assert!(nested.unwrap_err().to_string().contains("tokn"));
    let inline = serde_json::from_str::<ProviderDescriptor>(
        r#"{"id":"a","kind":"etcd","priority":1,"auth":{"token":"hunter2"}}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(inline.contains("inline secret"), "{inline}");
    assert!(!inline.contains("hunter2"), "secret echoed: {inline}");
    let bad_id =
        serde_json::from_str::<ProviderDescriptor>(r#"{"id":"A","kind":"etcd","priority":1}"#);
    assert!(bad_id.is_err());
}

#[test]
fn member_spec_schema() {
    let spec: MemberSpec = serde_json::from_str(
        r#"{"id":"n1","host":"h","port":65535,"labels":{"a":"b"},"blocked":true}"#,
    )
    .unwrap();
    assert!(spec.blocked);
    assert!(serde_json::from_str::<MemberSpec>(r#"{"id":"n1","host":"h","port":65536}"#).is_err());
    assert!(
        serde_json::from_str::<MemberSpec>(r#"{"id":"n1","host":"h","port":1,"x":1}"#).is_err()
    );
    let s = ProviderSnapshot::from_specs([spec]).unwrap();
    assert!(s.is_blocked("n1"));
}

#[test]
fn contract_example_lines_parse_and_validate() {
    let validator = super::common::builtin();
    let lines = [
        r#"{"id":"local","kind":"in_memory","priority":0,"watch":{"members":[{"id":"n1","host":"127.0.0.1","port":4000}]},"enabled":true}"#,
        r#"{"id":"consul-a","kind":"consul","priority":20,"endpoints":["http://127.0.0.1:8500"],"auth":{"token":"env:CONSUL_HTTP_TOKEN"},"watch":{"service":"app","passing":true,"consistency":"default","wait":"4s"},"enabled":true}"#,
        r#"{"id":"k8s","kind":"k8s","priority":30,"watch":{"namespace":"default","resource":"pods","label_selector":"app=actors","port_name":"remoting"},"enabled":true}"#,
        r#"{"id":"etcd-a","kind":"etcd","priority":10,"endpoints":["http://127.0.0.1:2379"],"watch":{"prefix":"/cluster/app/"},"enabled":true}"#,
    ];
    let set: Vec<ProviderDescriptor> = lines.iter().map(|l| super::common::d(l)).collect();
    validator.validate_set(&set).map_err(|(_, e)| e).unwrap();
}
