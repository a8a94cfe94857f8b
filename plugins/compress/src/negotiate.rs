//! Content negotiation on `Accept-Encoding` (RFC 9110 §12.5.3): q-values, `*`, `identity`,
//! and `q=0` as "not acceptable". A malformed element (a bad token, a bad q-value) is ignored
//! on its own; nothing a client sends makes the request fail.

use sluice_plugin_sdk::Encoding;

/// The most elements of an `Accept-Encoding` list looked at; the rest are ignored (a client
/// that lists more is not a browser, and the work stays bounded whatever it sends).
const MAX_ELEMENTS: usize = 64;

/// What the client said about one coding: its weight in thousandths (0..=1000).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Weights {
    gzip: Option<u16>,
    br: Option<u16>,
    zstd: Option<u16>,
    identity: Option<u16>,
    any: Option<u16>,
}

impl Weights {
    fn of(&self, encoding: Encoding) -> u16 {
        let explicit = match encoding {
            Encoding::Gzip => self.gzip,
            Encoding::Br => self.br,
            Encoding::Zstd => self.zstd,
        };
        explicit.or(self.any).unwrap_or(0)
    }

    /// How much the client prefers the body as it is: only an explicit `identity` entry
    /// competes with the codings (identity is always acceptable as the fallback when no
    /// coding is; RFC 9110 §12.5.3 gives it no weight of its own otherwise).
    fn identity(&self) -> u16 {
        self.identity.unwrap_or(0)
    }
}

/// Parses a q-value (`0`, `0.5`, `1.000`; at most three decimals) into thousandths.
fn parse_q(value: &str) -> Option<u16> {
    let (int, frac) = value.split_once('.').unwrap_or((value, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_value = format!("{frac:0<3}").parse::<u16>().ok()?;
    match int {
        "0" => Some(frac_value),
        "1" if frac_value == 0 => Some(1000),
        _ => None,
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Reads one list element: `coding [; q=value]`. None when malformed.
fn parse_element(element: &str) -> Option<(String, u16)> {
    let mut parts = element.split(';');
    let coding = parts.next()?.trim().to_ascii_lowercase();
    if !is_token(&coding) {
        return None;
    }
    let mut q = 1000;
    for param in parts {
        let (name, value) = param.split_once('=')?;
        if name.trim().eq_ignore_ascii_case("q") {
            q = parse_q(value.trim())?;
        } else {
            return None;
        }
    }
    Some((coding, q))
}

fn weights(header_values: &[&str]) -> Weights {
    let mut w = Weights::default();
    let elements = header_values.iter().flat_map(|v| v.split(','));
    for element in elements.filter(|e| !e.trim().is_empty()).take(MAX_ELEMENTS) {
        let Some((coding, q)) = parse_element(element) else {
            continue;
        };
        let slot = match coding.as_str() {
            "gzip" | "x-gzip" => &mut w.gzip,
            "br" => &mut w.br,
            "zstd" => &mut w.zstd,
            "identity" => &mut w.identity,
            "*" => &mut w.any,
            _ => continue,
        };
        // A coding listed twice keeps its first weight.
        slot.get_or_insert(q);
    }
    w
}

/// Chooses the encoding for a request whose `Accept-Encoding` values are `header_values`
/// (none: the header is absent), among `preference` (the server's order, most preferred
/// first). The client's highest q wins; ties go to the server's order. None means send the
/// body as it is: no header, nothing acceptable, or identity preferred over every coding.
pub fn choose(header_values: &[&str], preference: &[Encoding]) -> Option<Encoding> {
    if header_values.is_empty() {
        return None;
    }
    let w = weights(header_values);
    let mut best: Option<(Encoding, u16)> = None;
    for &encoding in preference {
        let q = w.of(encoding);
        if q > 0 && best.is_none_or(|(_, b)| q > b) {
            best = Some((encoding, q));
        }
    }
    let (encoding, q) = best?;
    (q >= w.identity()).then_some(encoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: [Encoding; 3] = [Encoding::Br, Encoding::Zstd, Encoding::Gzip];

    fn pick(header: &str) -> Option<Encoding> {
        choose(&[header], &ORDER)
    }

    #[test]
    fn q_values_decide_and_ties_go_to_the_server_order() {
        assert_eq!(pick("gzip, br, zstd"), Some(Encoding::Br));
        assert_eq!(pick("gzip"), Some(Encoding::Gzip));
        assert_eq!(pick("gzip;q=0, br;q=0.5"), Some(Encoding::Br));
        assert_eq!(pick("gzip;q=1.0, br;q=0.9"), Some(Encoding::Gzip));
        assert_eq!(pick("zstd;q=0.8, gzip;q=0.8"), Some(Encoding::Zstd));
        assert_eq!(pick("GZIP;Q=0.3"), Some(Encoding::Gzip));
        assert_eq!(pick("x-gzip"), Some(Encoding::Gzip));
        assert_eq!(pick("deflate, compress"), None, "nothing we speak");
        assert_eq!(
            choose(&["br;q=0.5", "gzip;q=0.9"], &ORDER),
            Some(Encoding::Gzip),
            "several header lines"
        );
    }

    #[test]
    fn star_identity_and_zero_weights() {
        assert_eq!(pick("*"), Some(Encoding::Br));
        assert_eq!(pick("*;q=0.5, br;q=0"), Some(Encoding::Zstd));
        assert_eq!(pick("br;q=0, zstd;q=0, gzip;q=0"), None);
        assert_eq!(pick("*;q=0"), None);
        assert_eq!(pick("identity"), None);
        assert_eq!(pick("gzip;q=0.5, identity"), None, "identity preferred");
        assert_eq!(pick("gzip;q=0.5, identity;q=0.5"), Some(Encoding::Gzip));
        assert_eq!(pick("gzip;q=0.1, identity;q=0"), Some(Encoding::Gzip));
        assert_eq!(pick(""), None, "an empty value asks for identity");
        assert_eq!(choose(&[], &ORDER), None, "no header: no compression");
    }

    #[test]
    fn garbage_is_ignored_element_by_element() {
        assert_eq!(pick(";;;"), None);
        assert_eq!(pick("gzip;q=abc"), None);
        assert_eq!(pick("gzip;q=abc, br"), Some(Encoding::Br));
        assert_eq!(pick("gzip;q=2, zstd;q=1.5, br;q=0.0001"), None);
        assert_eq!(pick("gzip;q=-1, br;q="), None);
        assert_eq!(pick("gzip;level=9, zstd"), Some(Encoding::Zstd));
        assert_eq!(pick("g zip, br"), Some(Encoding::Br));
        assert_eq!(pick("gzip;q=0.5;q=1"), Some(Encoding::Gzip));
        assert_eq!(pick(",,, ,gzip,,"), Some(Encoding::Gzip));
        assert_eq!(pick("\u{e9}, br"), Some(Encoding::Br));
        let huge = "x-unknown;q=0.5, ".repeat(10_000) + "gzip";
        assert_eq!(pick(&huge), None, "only the first elements are read");
    }

    #[test]
    fn q_value_syntax() {
        assert_eq!(parse_q("0"), Some(0));
        assert_eq!(parse_q("0.5"), Some(500));
        assert_eq!(parse_q("0.125"), Some(125));
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("1.000"), Some(1000));
        assert_eq!(parse_q("1.001"), None);
        assert_eq!(parse_q("0.1234"), None);
        assert_eq!(parse_q(".5"), None);
        assert_eq!(parse_q("0.+5"), None);
        assert_eq!(parse_q(""), None);
    }

    #[test]
    fn the_server_order_is_configurable() {
        let gzip_first = [Encoding::Gzip, Encoding::Br];
        assert_eq!(choose(&["br, gzip, zstd"], &gzip_first), Some(Encoding::Gzip));
        assert_eq!(choose(&["zstd"], &gzip_first), None, "zstd is not offered");
    }
}
