//! Several `tessera` processes on one vault at the same time: nothing lost, nothing repeated.

use std::collections::HashSet;
use std::process::Child;

use crate::support::{Sandbox, oathtool};

fn spawn_all(sandbox: &Sandbox, commands: Vec<Vec<String>>) -> Vec<Child> {
    commands
        .into_iter()
        .map(|args| {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            sandbox
                .command(&args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect()
}

#[test]
fn parallel_writers_lose_nothing() {
    let sandbox = Sandbox::with_keystore_vault();
    let mut commands = Vec::new();
    for writer in 0..8 {
        let file = sandbox.path(&format!("import-{writer}.txt"));
        let lines: String = (0..5)
            .map(|i| {
                format!(
                    "otpauth://totp/W{writer}:t{i}?secret=GEZDGNBVGY3TQOJQGEZDGNBV{}\n",
                    ["GA", "GE", "GI", "GM", "GQ"][i]
                )
            })
            .collect();
        std::fs::write(&file, lines).unwrap();
        commands.push(vec!["import".into(), "--otpauth".into(), file.to_str().unwrap().into()]);
        commands.push(vec!["list".into()]);
    }
    for child in spawn_all(&sandbox, commands) {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    let json = sandbox.list_json();
    assert_eq!(json.as_array().unwrap().len(), 40);
}

#[test]
fn parallel_hotp_codes_are_never_repeated() {
    let sandbox = Sandbox::with_keystore_vault();
    let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    sandbox.run(&["add", &format!("otpauth://hotp/Bank:me?secret={secret}&counter=0")]).ok();
    let takers = 12;
    let children = spawn_all(&sandbox, (0..takers).map(|_| vec!["code".into(), "bank".into()]).collect());
    let codes: HashSet<String> = children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().unwrap();
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            String::from_utf8(output.stdout).unwrap().trim().to_owned()
        })
        .collect();
    let expected: HashSet<String> =
        (0..takers).map(|c| oathtool(&["-b", "-c", &c.to_string(), secret])).collect();
    assert_eq!(codes, expected, "each process got a different counter's code");
    let json = sandbox.list_json();
    assert_eq!(json[0]["counter"], takers);
}
