//! hardware — host probe, tuners, instance profiles and capacity planning. Empty until its issue
//! lands: nothing here yet by design.
