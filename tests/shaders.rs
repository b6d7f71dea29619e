//! Every composed WGSL kernel parses and validates with naga (no GPU needed).

use likely::family::FamilyName;
use likely::gpu::shader::{compose, validate, ReduceShape, MAX_TERMS};

#[test]
fn every_family_kernel_validates_in_both_reductions() {
    for name in FamilyName::ALL {
        for classes in [1, 7, MAX_TERMS] {
            let family = name.build(classes);
            for subgroups in [false, true] {
                for shape in [ReduceShape::HARDWARE, ReduceShape::SOFTWARE] {
                    let source = compose(family.as_ref(), subgroups, shape);
                    if let Err(e) = validate(&source, subgroups) {
                        panic!(
                            "{} (K={classes}, subgroups={subgroups}, {shape:?}) does not \
                             validate:\n{e}",
                            family.name()
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn subgroup_kernel_needs_the_subgroup_capability() {
    // The validator must be able to fail: the subgroup variant without the capability is rejected.
    let family = FamilyName::Gaussian.build(1);
    let source = compose(family.as_ref(), true, ReduceShape::HARDWARE);
    assert!(validate(&source, false).is_err());
}

#[test]
fn a_broken_snippet_is_reported_with_its_location() {
    let source = compose(
        FamilyName::Gaussian.build(1).as_ref(),
        false,
        ReduceShape::HARDWARE,
    )
    .replace("d * d", "d * undefined_name");
    let err = validate(&source, false).unwrap_err();
    assert!(err.contains("undefined_name"), "{err}");
}

#[test]
fn every_model_kernel_validates() {
    use likely::model::{Activation, Head, Network};
    for family in likely::check::gpu_heads() {
        for activation in [Activation::Relu, Activation::Tanh, Activation::Gelu] {
            for (hidden, reference) in [(vec![], true), (vec![32], false), (vec![64, 32], false)] {
                let net = Network {
                    inputs: 10,
                    hidden,
                    activation,
                    head: Head::new(family, 5, reference),
                };
                let source = likely::gpu::mlp::compose(&net, 1000, 256);
                if let Err(e) = validate(&source, false) {
                    panic!("{family:?} {activation:?} model kernel does not validate:\n{e}");
                }
            }
        }
    }
}
