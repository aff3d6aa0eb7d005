//! The conformance matrix: one trial per (registered backend or combination, test), built
//! from the registry. Run one alone with
//! `cargo test -p oci-store-conformance --test matrix -- NAME --exact`.

use libtest_mimic::{Arguments, Trial};

fn main() {
    let arguments = Arguments::from_args();
    let trials: Vec<Trial> = oci_store_conformance::matrix::cases()
        .into_iter()
        .map(|case| {
            let name = case.name.clone();
            Trial::test(name, move || case.run().map_err(Into::into))
        })
        .collect();
    libtest_mimic::run(&arguments, trials).exit();
}
