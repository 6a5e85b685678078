//! Whether `spec.provider.aws.region` names an AWS region.
//!
//! The SDK resolves an endpoint for any host-label-like text, so a typo such as `us-east1` or a
//! display name such as `US East` would only fail later, as a DNS error on every call. The check
//! follows the region patterns of AWS's partitions (the SDK's partition table, `regionRegex`)
//! rather than a list of regions, so a new region in a known partition is accepted the day it
//! opens.
use lockstep_provider_api::ProviderError;

/// The first label of a region in the commercial partition, and China's.
const AREAS: [&str; 10] = ["us", "eu", "ap", "sa", "ca", "me", "af", "il", "mx", "cn"];

/// `<area>-<qualifier>-`: the partitions whose regions carry a second fixed label (GovCloud, the
/// isolated partitions, the European Sovereign Cloud).
const QUALIFIED: [(&str, &str); 6] = [
    ("us", "gov"),
    ("us", "iso"),
    ("us", "isob"),
    ("us", "isof"),
    ("eu", "isoe"),
    ("eusc", "de"),
];

/// Accepts an AWS region name such as `us-east-1`, `us-gov-west-1`, `cn-north-1` or
/// `eusc-de-east-1`; anything else is an `Invalid` error that names the region and shows what a
/// valid one looks like.
pub fn validate_region(region: &str) -> Result<(), ProviderError> {
    if is_region_name(region) {
        return Ok(());
    }
    Err(ProviderError::invalid(format!(
        "region {region:?} is not an AWS region name: set spec.provider.aws.region to a region \
         code such as us-east-1, eu-west-2 or ap-southeast-1 (lower case, <area>-<direction>-<number>; \
         GovCloud, China and the isolated partitions look like us-gov-west-1, cn-north-1, us-iso-east-1)"
    )))
}

fn is_region_name(region: &str) -> bool {
    let labels: Vec<&str> = region.split('-').collect();
    match labels.as_slice() {
        [area, direction, number] => {
            AREAS.contains(area) && is_direction(direction) && is_number(number)
        }
        [area, qualifier, direction, number] => {
            QUALIFIED.contains(&(*area, *qualifier)) && is_direction(direction) && is_number(number)
        }
        _ => false,
    }
}

fn is_direction(label: &str) -> bool {
    !label.is_empty() && label.bytes().all(|b| b.is_ascii_lowercase())
}

fn is_number(label: &str) -> bool {
    !label.is_empty() && label.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lockstep_provider_api::ErrorClass;

    #[test]
    fn accepts_the_regions_of_every_partition() {
        for region in [
            "us-east-1",
            "us-west-2",
            "eu-central-2",
            "ap-southeast-7",
            "ap-northeast-3",
            "sa-east-1",
            "ca-west-1",
            "me-central-1",
            "af-south-1",
            "il-central-1",
            "mx-central-1",
            "cn-north-1",
            "cn-northwest-1",
            "us-gov-west-1",
            "us-gov-east-1",
            "us-iso-east-1",
            "us-isob-east-1",
            "us-isof-south-1",
            "eu-isoe-west-1",
            "eusc-de-east-1",
        ] {
            assert!(
                validate_region(region).is_ok(),
                "{region} should be accepted"
            );
        }
    }

    #[test]
    fn rejects_what_is_not_a_region_name() {
        for region in [
            "",
            "mars-north-9",
            "US East",
            "US-EAST-1",
            "us-east",
            "us-east1",
            "useast1",
            "us-east-1a",
            "us-east-one",
            "eu-gov-west-1",
            "us-isoe-west-1",
            "aws-global",
            "us-east-1.amazonaws.com",
            "us_east_1",
            "us--1",
            " us-east-1",
        ] {
            assert!(
                validate_region(region).is_err(),
                "{region:?} should be rejected"
            );
        }
    }

    #[test]
    fn the_message_names_the_region_and_shows_a_valid_one() {
        let err = validate_region("mars-north-9").expect_err("not a region");
        assert_eq!(err.class, ErrorClass::Invalid);
        assert!(err.message.contains("\"mars-north-9\""), "{}", err.message);
        assert!(err.message.contains("us-east-1"), "{}", err.message);
        assert!(
            err.message.contains("spec.provider.aws.region"),
            "{}",
            err.message
        );
    }
}
