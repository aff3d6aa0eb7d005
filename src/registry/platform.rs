//! Choosing one manifest of a multi-platform index: `os/architecture[/variant]`, with the
//! variants the image-spec and containerd treat as the defaults (`arm64` is `v8`, `arm` is `v7`
//! when nothing is said), so `linux/arm64` and `linux/arm64/v8` name the same entry.

use oci_spec::image::Descriptor;

use crate::stores::oci::Platform;

fn normalized(architecture: &str, variant: Option<&str>) -> (String, Option<String>) {
    let variant = variant.filter(|v| !v.is_empty());
    let default_variant = match architecture {
        "arm64" => Some("v8"),
        "arm" => Some("v7"),
        _ => None,
    };
    (
        architecture.to_string(),
        variant.or(default_variant).map(str::to_string),
    )
}

/// Whether an entry's platform is the one asked for. With no variant asked, an entry of any
/// variant matches, the default variant first (see [`choose`]).
fn matches(wanted: &Platform, os: &str, architecture: &str, variant: Option<&str>) -> bool {
    if wanted.os != os || wanted.architecture != architecture {
        return false;
    }
    match &wanted.variant {
        None => true,
        Some(asked) => {
            normalized(architecture, variant).1 == normalized(architecture, Some(asked)).1
        }
    }
}

/// The entry of `manifests` for `wanted`: an exact variant match first, then the default
/// variant, then any variant (when none was asked).
pub fn choose<'d>(manifests: &'d [Descriptor], wanted: &Platform) -> Option<&'d Descriptor> {
    let candidates: Vec<&Descriptor> = manifests
        .iter()
        .filter(|d| {
            d.platform().as_ref().is_some_and(|p| {
                matches(
                    wanted,
                    &p.os().to_string(),
                    &p.architecture().to_string(),
                    p.variant().as_deref(),
                )
            })
        })
        .collect();
    let variant_of = |d: &Descriptor| {
        d.platform()
            .as_ref()
            .and_then(|p| p.variant().clone())
            .filter(|v| !v.is_empty())
    };
    let default_variant = normalized(&wanted.architecture, None).1;
    candidates
        .iter()
        .find(|d| variant_of(d) == wanted.variant)
        .or_else(|| candidates.iter().find(|d| variant_of(d) == default_variant))
        .or_else(|| candidates.first())
        .copied()
}

/// `os/architecture[/variant]` of every entry, for the error that names what there is.
pub fn listed(manifests: &[Descriptor]) -> String {
    let names: Vec<String> = manifests
        .iter()
        .filter_map(|d| d.platform().as_ref())
        .map(|p| {
            let mut name = format!("{}/{}", p.os(), p.architecture());
            if let Some(variant) = p.variant() {
                name.push('/');
                name.push_str(variant);
            }
            name
        })
        .collect();
    if names.is_empty() {
        "no platforms".to_string()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(arch: &str, variant: Option<&str>, digit: char) -> Descriptor {
        let mut platform = serde_json::json!({"os": "linux", "architecture": arch});
        if let Some(v) = variant {
            platform["variant"] = v.into();
        }
        serde_json::from_value(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{}", digit.to_string().repeat(64)),
            "size": 1,
            "platform": platform,
        }))
        .unwrap()
    }

    #[test]
    fn variants_are_chosen_with_their_defaults() {
        let index = vec![
            entry("amd64", None, '1'),
            entry("arm", Some("v6"), '2'),
            entry("arm", Some("v7"), '3'),
            entry("arm64", Some("v8"), '4'),
        ];
        let pick = |text: &str| {
            choose(&index, &Platform::parse(text).unwrap()).map(|d| d.digest().to_string())
        };
        let digest = |c: char| Some(format!("sha256:{}", c.to_string().repeat(64)));
        assert_eq!(pick("linux/amd64"), digest('1'));
        assert_eq!(pick("linux/arm/v6"), digest('2'));
        assert_eq!(pick("linux/arm"), digest('3'));
        assert_eq!(pick("linux/arm64"), digest('4'));
        assert_eq!(pick("linux/arm64/v8"), digest('4'));
        assert_eq!(pick("linux/arm/v5"), None);
        assert_eq!(pick("windows/amd64"), None);
    }
}
