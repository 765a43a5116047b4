//! The partition columns a module declares: the `weir.partition_columns` custom section that
//! the guest SDK's `export!(f, columns = [...])` writes, one name per line. Read from the bytes,
//! without compiling or running the module.

/// The custom section's name.
pub(super) const SECTION: &str = "weir.partition_columns";

/// The declared columns, or None for a module that declares none. Err for a module whose
/// sections cannot be walked, or a declaration that is not UTF-8 or appears twice.
pub fn declared_columns(module: &[u8]) -> Result<Option<Vec<String>>, String> {
    let mut rest = module
        .strip_prefix(b"\0asm")
        .and_then(|r| r.get(4..))
        .ok_or("missing the `\\0asm` header")?;
    let mut found = None;
    while !rest.is_empty() {
        let id = rest[0];
        rest = &rest[1..];
        let size = leb128(&mut rest).ok_or("a section size is truncated")? as usize;
        let body = rest.get(..size).ok_or("a section runs past the end")?;
        rest = &rest[size..];
        if id != 0 {
            continue;
        }
        let mut body = body;
        let len = leb128(&mut body).ok_or("a custom section name is truncated")? as usize;
        let name = body
            .get(..len)
            .ok_or("a custom section name is truncated")?;
        if name != SECTION.as_bytes() {
            continue;
        }
        if found.is_some() {
            return Err(format!("the module has two `{SECTION}` sections"));
        }
        let text = std::str::from_utf8(&body[len..])
            .map_err(|_| format!("the `{SECTION}` section is not UTF-8"))?;
        found = Some(text.lines().map(str::to_owned).collect());
    }
    Ok(found)
}

fn leb128(bytes: &mut &[u8]) -> Option<u32> {
    let mut value: u32 = 0;
    for shift in (0..35).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u32::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn custom(name: &str, data: &[u8]) -> Vec<u8> {
        let mut body = vec![name.len() as u8];
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(data);
        let mut section = vec![0, body.len() as u8];
        section.extend(body);
        section
    }

    fn module(sections: &[Vec<u8>]) -> Vec<u8> {
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        sections.iter().for_each(|s| m.extend_from_slice(s));
        m
    }

    #[test]
    fn reads_the_declaration_among_other_sections() {
        let m = module(&[
            custom("name", b"xyz"),
            vec![1, 1, 0], // an empty type section
            custom(SECTION, b"section\ndt\nhr\n"),
        ]);
        assert_eq!(
            declared_columns(&m),
            Ok(Some(vec!["section".into(), "dt".into(), "hr".into()]))
        );
        assert_eq!(declared_columns(&module(&[custom("name", b"")])), Ok(None));
    }

    #[test]
    fn damaged_modules_and_double_declarations_are_errors() {
        let twice = module(&[custom(SECTION, b"a\n"), custom(SECTION, b"b\n")]);
        assert!(declared_columns(&twice).unwrap_err().contains("two"));
        assert!(declared_columns(&module(&[custom(SECTION, b"\xff\n")])).is_err());
        let mut cut = module(&[custom(SECTION, b"a\n")]);
        cut.pop();
        cut.pop();
        assert!(declared_columns(&cut).is_err());
        assert!(declared_columns(b"not wasm").is_err());
        assert!(declared_columns(b"\0asm\x01\0\0\0\x00\xff\xff\xff\xff\xff").is_err());
    }
}
