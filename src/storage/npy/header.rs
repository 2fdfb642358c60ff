//! The `.npy` header: magic, version, and the Python-literal dict that holds
//! `descr`, `fortran_order` and `shape`.
//!
//! Format facts (numpy's `format.py` documents them): the file starts with
//! `\x93NUMPY`, a major and minor version byte, then the header length as a
//! little-endian u16 (version 1) or u32 (versions 2 and 3), then the header text,
//! padded with spaces and ended by `\n` so the data starts at a multiple of 64.

use crate::storage::array::DType;

const MAGIC: &[u8] = b"\x93NUMPY";
/// Data start alignment numpy uses since 1.x.
const ALIGN: usize = 64;

/// Byte order of the stored elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteOrder {
    /// Least significant byte first (`<`).
    Little,
    /// Most significant byte first (`>`).
    Big,
}

impl ByteOrder {
    /// The order of this machine.
    pub const NATIVE: ByteOrder = if cfg!(target_endian = "little") {
        ByteOrder::Little
    } else {
        ByteOrder::Big
    };
}

/// A parsed `.npy` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// Element type.
    pub dtype: DType,
    /// Byte order of the stored elements.
    pub order: ByteOrder,
    /// True when the data is in Fortran (column-major) order.
    pub fortran_order: bool,
    /// Array shape.
    pub shape: Vec<u64>,
    /// Offset of the first data byte.
    pub data_offset: usize,
}

/// Why a header could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// The header is malformed; the sentence says how.
    Corrupt(String),
    /// The header is well formed but its dtype is not one blockwise reads.
    UnsupportedDtype {
        /// The `descr` as the header spells it, e.g. `|S3` or `[('a', '<i4')]`.
        descr: String,
        /// What kind of dtype it is, in numpy's words.
        why: String,
    },
}

impl From<String> for HeaderError {
    fn from(s: String) -> Self {
        HeaderError::Corrupt(s)
    }
}

impl From<&str> for HeaderError {
    fn from(s: &str) -> Self {
        HeaderError::Corrupt(s.to_string())
    }
}

/// Parses the header at the start of `bytes`; the error says what is wrong, for the
/// caller to attach the path to.
///
/// # Errors
/// [`HeaderError::Corrupt`] for a malformed header, [`HeaderError::UnsupportedDtype`]
/// for a string, structured, object or other non-numeric dtype.
pub fn parse(bytes: &[u8]) -> Result<NpyHeader, HeaderError> {
    if bytes.len() < 10 || !bytes.starts_with(MAGIC) {
        return Err("does not start with the .npy magic \\x93NUMPY".into());
    }
    let major = bytes[6];
    let (len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 => {
            let Some(&[a, b, c, d]) = bytes.get(8..12) else {
                return Err("header length is cut off".into());
            };
            (u32::from_le_bytes([a, b, c, d]) as usize, 12)
        }
        v => return Err(format!("unknown .npy format version {v}").into()),
    };
    let end = start
        .checked_add(len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| {
            format!(
                "header claims {len} bytes but the file has only {} after the preamble",
                bytes.len() - start.min(bytes.len())
            )
        })?;
    let text = std::str::from_utf8(&bytes[start..end])
        .map_err(|_| "header is not valid text".to_string())?;
    let dict = text.trim_end_matches(['\n', ' ', '\0']).trim();
    let entries = dict_entries(dict)?;
    let value = |key: &str| -> Result<&str, String> {
        entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
            .ok_or_else(|| format!("header has no '{key}' key"))
    };
    let descr = value("descr")?;
    let fortran = value("fortran_order")?;
    let shape = value("shape")?;

    if descr.starts_with('[') {
        return Err(HeaderError::UnsupportedDtype {
            descr: descr.to_string(),
            why: structured_description(descr),
        });
    }
    let descr = unquote(descr).ok_or_else(|| format!("descr {descr} is not a string"))?;
    let (order, code) = match descr.as_bytes().first() {
        Some(b'<') => (ByteOrder::Little, &descr[1..]),
        Some(b'>') => (ByteOrder::Big, &descr[1..]),
        Some(b'|') | Some(b'=') => (ByteOrder::NATIVE, &descr[1..]),
        _ => (ByteOrder::NATIVE, descr),
    };
    let dtype = DType::from_numpy_code(code).ok_or_else(|| HeaderError::UnsupportedDtype {
        descr: descr.to_string(),
        why: kind_of_code(code).to_string(),
    })?;
    let fortran_order = match fortran {
        "True" => true,
        "False" => false,
        other => {
            return Err(format!("fortran_order is {other}, expected True or False").into());
        }
    };
    let shape = parse_shape(shape)?;
    Ok(NpyHeader {
        dtype,
        order,
        fortran_order,
        shape,
        data_offset: end,
    })
}

/// What kind of numpy dtype a type code (without byte order) is, for a message.
fn kind_of_code(code: &str) -> &'static str {
    match code.as_bytes().first() {
        Some(b'S') | Some(b'a') => {
            "a fixed-width bytes string dtype; string dtypes are not supported for arrays"
        }
        Some(b'U') => {
            "a fixed-width unicode string dtype; string dtypes are not supported for arrays"
        }
        Some(b'O') => "an object dtype (Python objects), which has no fixed binary layout",
        Some(b'V') => "a raw void dtype, which has no element type",
        Some(b'M') | Some(b'm') => "a datetime or timedelta dtype, not supported for arrays",
        _ => "not a numpy dtype blockwise knows",
    }
}

/// "a structured dtype with fields a (<i4), b (<f8)" from a descr list such as
/// `[('a', '<i4'), ('b', '<f8')]`.
fn structured_description(descr: &str) -> String {
    let mut fields = Vec::new();
    // Each field is a tuple `('name', 'type'...)`; read the first two quoted strings
    // of each top-level tuple. Nested structured fields are named by their name only.
    let inner = descr.trim_start_matches('[').trim_end_matches(']');
    for tuple in inner.split("),") {
        let quoted: Vec<&str> = tuple
            .split(['\'', '"'])
            .skip(1)
            .step_by(2)
            .take(2)
            .collect();
        match quoted.as_slice() {
            [name, ty] => fields.push(format!("{name} ({ty})")),
            [name] => fields.push(name.to_string()),
            _ => {}
        }
        if fields.len() == 20 {
            fields.push("...".into());
            break;
        }
    }
    if fields.is_empty() {
        "a structured dtype (a record with named fields); structured dtypes are not supported \
         for arrays"
            .into()
    } else {
        format!(
            "a structured dtype with fields {}; structured dtypes are not supported for arrays: \
             save each field as its own array",
            fields.join(", ")
        )
    }
}

/// The keys numpy writes, and the only ones it reads back.
const KEYS: [&str; 3] = ["descr", "fortran_order", "shape"];

/// Splits a header dict literal into its `(key, value text)` entries.
///
/// A real scan of the literal, not a substring search: quoted strings are skipped
/// whole (so `'shape'` inside a value is not a key), brackets nest, and each key
/// must appear once. numpy reads the header with `ast.literal_eval` and accepts
/// exactly the keys `descr`, `fortran_order` and `shape`; anything else is refused
/// here too, so both read the same array or neither does.
fn dict_entries(dict: &str) -> Result<Vec<(String, &str)>, String> {
    let inner = dict
        .strip_prefix('{')
        .and_then(|d| d.strip_suffix('}'))
        .ok_or_else(|| "header is not a {...} dict".to_string())?;
    let mut entries: Vec<(String, &str)> = Vec::new();
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        let key_len = quoted_len(rest)
            .ok_or_else(|| format!("header key at '{}' is not a quoted string", head(rest)))?;
        let key = rest[1..key_len - 1].to_string();
        rest = rest[key_len..].trim_start();
        rest = rest
            .strip_prefix(':')
            .ok_or_else(|| format!("no ':' after '{key}' in the header"))?;
        let value_len = value_len(rest).ok_or_else(|| {
            format!("the value of '{key}' in the header has an unclosed quote or bracket")
        })?;
        let value = rest[..value_len].trim();
        if value.is_empty() {
            return Err(format!("'{key}' has no value in the header"));
        }
        if !KEYS.contains(&key.as_str()) {
            return Err(format!(
                "header has the key '{key}'; numpy writes and reads exactly 'descr', \
                 'fortran_order' and 'shape'"
            ));
        }
        if entries.iter().any(|(k, _)| *k == key) {
            return Err(format!("header has the key '{key}' twice"));
        }
        entries.push((key, value));
        rest = rest[value_len..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    Ok(entries)
}

/// The first few characters of `text`, for a message.
fn head(text: &str) -> String {
    text.chars().take(20).collect()
}

/// Length in bytes of the quoted string at the start of `text` (quotes included),
/// or `None` when `text` does not start with a closed string.
fn quoted_len(text: &str) -> Option<usize> {
    let quote = text.chars().next().filter(|&c| c == '\'' || c == '"')?;
    let mut escaped = false;
    for (i, c) in text.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            c if c == quote => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// Length in bytes of the value at the start of `text`: up to the first comma
/// outside quotes and brackets, or the end; `None` for an unclosed quote or bracket.
fn value_len(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(c) = text[i..].chars().next() {
        match c {
            '\'' | '"' => {
                i += quoted_len(&text[i..])?;
                continue;
            }
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.checked_sub(1)?,
            ',' if depth == 0 => return Some(i),
            _ => {}
        }
        i += c.len_utf8();
    }
    (depth == 0).then_some(i)
}

fn unquote(s: &str) -> Option<&str> {
    let s = s.trim();
    for q in ['\'', '"'] {
        if let Some(inner) = s.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return Some(inner);
        }
    }
    None
}

fn parse_shape(s: &str) -> Result<Vec<u64>, String> {
    let inner = s
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("shape {s} is not a tuple"))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.trim_end_matches('L')
                .parse::<u64>()
                .map_err(|_| format!("shape entry {p} is not a non-negative integer"))
        })
        .collect()
}

/// Encodes a version-1 header for a C-order little-endian array.
///
/// `reserve_rows` pads the header so that a later rewrite with any first-axis length
/// up to `u64::MAX` keeps the same length: the data offset never moves.
pub fn encode(dtype: DType, shape: &[u64], reserve_rows: bool) -> Vec<u8> {
    let order = if dtype.size() == 1 { '|' } else { '<' };
    let shape_text = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let dict = format!(
        "{{'descr': '{order}{}', 'fortran_order': False, 'shape': {shape_text}, }}",
        dtype.numpy_code()
    );
    let slack = if reserve_rows { 20 } else { 0 };
    let unpadded = MAGIC.len() + 4 + dict.len() + slack + 1;
    let total = unpadded.div_ceil(ALIGN) * ALIGN;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&((total - 10) as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    out
}

/// The header [`encode`] writes, padded to exactly `total` bytes: what rewriting the
/// header of a file whose data starts at `total` needs (the first axis known only
/// once the rows are written). `None` when it does not fit or `total` is not a
/// multiple of the 64-byte alignment.
pub fn encode_with_len(dtype: DType, shape: &[u64], total: usize) -> Option<Vec<u8>> {
    let header = encode(dtype, shape, false);
    if header.len() > total || !total.is_multiple_of(ALIGN) || total - 10 > u16::MAX as usize {
        return None;
    }
    let mut out = header[..header.len() - 1].to_vec();
    out.resize(total - 1, b' ');
    out.push(b'\n');
    out[8..10].copy_from_slice(&((total - 10) as u16).to_le_bytes());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_alignment() {
        for shape in [vec![37, 23], vec![1000], vec![5, 7, 9], vec![]] {
            let h = encode(DType::Float64, &shape, false);
            assert_eq!(h.len() % 64, 0);
            let p = parse(&h).unwrap();
            assert_eq!(p.shape, shape);
            assert_eq!(p.dtype, DType::Float64);
            assert_eq!(p.data_offset, h.len());
        }
    }

    #[test]
    fn reserved_header_keeps_its_length() {
        let a = encode(DType::Int32, &[0, 3], true);
        let b = encode(DType::Int32, &[u64::MAX, 3], true);
        assert_eq!(a.len(), b.len());
        assert_eq!(parse(&b).unwrap().shape, vec![u64::MAX, 3]);
    }

    #[test]
    fn numpy_style_headers_parse() {
        let mut f = b"\x93NUMPY\x01\x00".to_vec();
        let text = "{'descr': '>i4', 'fortran_order': True, 'shape': (3, 2), }    \n";
        f.extend_from_slice(&(text.len() as u16).to_le_bytes());
        f.extend_from_slice(text.as_bytes());
        let h = parse(&f).unwrap();
        assert_eq!(h.order, ByteOrder::Big);
        assert!(h.fortran_order);
        assert_eq!(h.dtype, DType::Int32);
    }

    #[test]
    fn broken_headers_say_why() {
        let corrupt = |e: HeaderError| match e {
            HeaderError::Corrupt(s) => s,
            other => panic!("{other:?}"),
        };
        assert!(corrupt(parse(b"garbage").unwrap_err()).contains("magic"));
        let mut f = b"\x93NUMPY\x01\x00".to_vec();
        f.extend_from_slice(&200u16.to_le_bytes());
        f.extend_from_slice(b"{'descr': '<f8'");
        assert!(corrupt(parse(&f).unwrap_err()).contains("header claims 200 bytes"));
        let mut f = b"\x93NUMPY\x01\x00".to_vec();
        let text = "{'descr': '<U8', 'fortran_order': False, 'shape': (3,), }\n";
        f.extend_from_slice(&(text.len() as u16).to_le_bytes());
        f.extend_from_slice(text.as_bytes());
        let HeaderError::UnsupportedDtype { descr, why } = parse(&f).unwrap_err() else {
            panic!()
        };
        assert_eq!(descr, "<U8");
        assert!(why.contains("string dtype"), "{why}");
    }

    fn header_with(dict: &str) -> Vec<u8> {
        let mut f = b"\x93NUMPY\x01\x00".to_vec();
        let text = format!("{dict}\n");
        f.extend_from_slice(&(text.len() as u16).to_le_bytes());
        f.extend_from_slice(text.as_bytes());
        f
    }

    #[test]
    fn the_dict_is_parsed_not_searched() {
        let corrupt = |dict: &str| match parse(&header_with(dict)) {
            Err(HeaderError::Corrupt(s)) => s,
            other => panic!("{dict}: {other:?}"),
        };
        // numpy's literal_eval keeps the last of two keys; a search keeps the first:
        // refuse rather than read a different array than numpy.
        let text =
            corrupt("{'descr': '<f8', 'fortran_order': False, 'shape': (6, 10), 'shape': (1,), }");
        assert!(text.contains("'shape' twice"), "{text}");
        let text = corrupt("{'descr': '<f8', 'fortran_order': False, 'shape': (6,), 'foo': 1}");
        assert!(text.contains("'foo'"), "{text}");
        let text = corrupt("{'descr': '<f8', 'fortran_order': False, 'shape': (6,");
        assert!(text.contains("dict"), "{text}");
        let text = corrupt("{'descr': '<f8', 'fortran_order': False, 'shape': (6,}");
        assert!(text.contains("'shape'"), "{text}");
        assert!(corrupt("{descr: '<f8'}").contains("quoted"));
        // A key's name inside another value is not a key.
        let h = parse(&header_with(
            "{\"descr\": '<f8', 'fortran_order': False, 'shape': (3,)}",
        ))
        .unwrap();
        assert_eq!(h.shape, vec![3]);
        let e = parse(&header_with(
            "{'descr': \"<f8', 'shape': (1,)\", 'fortran_order': False, 'shape': (3,)}",
        ))
        .unwrap_err();
        assert!(matches!(e, HeaderError::UnsupportedDtype { .. }), "{e:?}");
    }

    #[test]
    fn structured_dtypes_name_their_fields() {
        let mut f = b"\x93NUMPY\x01\x00".to_vec();
        let text =
            "{'descr': [('a', '<i4'), ('b', '<f8')], 'fortran_order': False, 'shape': (3,), }\n";
        f.extend_from_slice(&(text.len() as u16).to_le_bytes());
        f.extend_from_slice(text.as_bytes());
        let HeaderError::UnsupportedDtype { why, .. } = parse(&f).unwrap_err() else {
            panic!()
        };
        assert!(
            why.contains("structured dtype with fields a (<i4), b (<f8)"),
            "{why}"
        );
    }
}
