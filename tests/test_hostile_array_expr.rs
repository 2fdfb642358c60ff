//! Hostile `array` expressions through the binary: arrays too big for any machine,
//! chunkings of billions of blocks, shapes that overflow when broadcast, deep nesting,
//! unknown names, bad inputs and outputs. Each is refused at once with exit 2, a
//! message that says what and where, no panic, and nothing written.

mod common;

use std::process::Output;

use common::{blockwise, entries};

fn array(args: &[&str]) -> Output {
    let mut all = vec!["array"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--memory-limit", "1GiB", "--no-progress"]);
    blockwise(all)
}

fn refused(expr: &str, needles: &[&str]) {
    common::assert_refused(&array(&[expr]), 2, needles);
}

#[test]
fn arrays_too_big_for_any_machine_are_refused_before_anything_is_allocated() {
    refused(
        "zeros((2**40, 2**40))",
        &["too big", "(1099511627776, 1099511627776)"],
    );
    refused("eye(10**10)", &["too big"]);
    refused("arange(1e19)", &["too big"]);
    refused("ones((2**40, 1)) + ones((1, 2**40))", &["too big", "add"]);
    refused("broadcast_to(ones(3), (2**62, 2**62, 3))", &["too big"]);
}

#[test]
fn chunkings_of_too_many_blocks_are_refused_with_advice() {
    refused(
        "zeros((10**15,), chunks=1)",
        &["1000000000000000 blocks", "larger chunks"],
    );
    refused(
        "random.random((10**9,), chunks=1).sum()",
        &["1000000000 blocks", "larger chunks"],
    );
    refused("arange(1e17)", &["blocks", "larger chunks"]);
    refused("zeros((5,), chunks=0)", &["positive"]);
    refused(
        "zeros((3, 4), chunks=(1, 1, 1))",
        &["3 chunk lengths", "2 dimensions"],
    );
}

#[test]
fn results_larger_than_memory_must_go_to_a_file() {
    refused(
        "zeros((10**6, 10**6), chunks=(10**6, 1))",
        &["8000000000000 bytes", "-o out.zarr"],
    );
}

#[test]
fn expressions_that_cannot_mean_anything_say_where() {
    refused("arcsn(zeros(3))", &["arcsn", "arcsin", "column 1"]);
    refused("zeros(3) + ones(4)", &["(3,)", "(4,)", "broadcast"]);
    refused("zeros((3, 4)).sum(axis=2)", &["axis 2", "dimension 2"]);
    refused("zeros(3, dtype='uint8') + 300", &["300", "uint8"]);
    refused("zeros(3)[::0]", &["step cannot be zero"]);
    refused("zeros(3)[5]", &["index 5 is out of bounds"]);
    refused("zeros(3) @ ones(4)", &["matmul", "contracted"]);
    refused("zeros(3) and ones(3)", &["ambiguous"]);
    refused("x = 1", &["assignment"]);
    let deep = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
    refused(&deep, &["nested"]);
}

#[test]
fn bad_inputs_and_outputs_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.zarr");
    let missing = dir.path().join("missing.zarr");
    common::assert_refused(
        &array(&["x + 1", "--input", &format!("x={}", missing.display())]),
        2,
        &["missing.zarr"],
    );
    common::assert_refused(&array(&["x + 1", "--input", "x"]), 2, &["NAME=PATH"]);
    common::assert_refused(
        &array(&["1", "--input", &format!("1x={}", missing.display())]),
        2,
        &["not a name"],
    );
    common::assert_refused(
        &array(&[
            "zeros(3)",
            "-o",
            &dir.path().join("out.csv").display().to_string(),
        ]),
        2,
        &["array format"],
    );
    std::fs::create_dir(&out).unwrap();
    common::assert_refused(
        &array(&["zeros(3)", "-o", &out.display().to_string()]),
        2,
        &["already exists"],
    );
    assert_eq!(entries(dir.path()), vec!["out.zarr".to_string()]);
}

/// What the review found: answers that must equal numpy's, and inputs that once
/// panicked or broke the plan.
#[test]
fn python_numbers_past_64_bits_non_finite_constants_and_extreme_slices() {
    let cases: &[(&str, &str)] = &[
        ("zeros(2) + 2**64", "[1.84467441e+19 1.84467441e+19]"),
        ("ones(2) * 2**70", "[1.18059162e+21 1.18059162e+21]"),
        ("ones(2) * nan", "[nan nan]"),
        ("full((2,), inf) - 1", "[inf inf]"),
        ("linspace(0, 1, 0)", "[]"),
        ("linspace(0, 1, 1)", "[0.]"),
        (
            "full((2,), 2**63)",
            "[9223372036854775808 9223372036854775808]",
        ),
        ("zeros(2, dtype='uint8') < 256", "[ True  True]"),
        ("arange(5)[::-2**63]", "[4]"),
        ("arange(5)[-2**63:2**63-1:2**63-1]", "[0]"),
        ("-arange(3)", "[ 0 -1 -2]"),
        ("floor(ones(2, dtype='bool'))", "[ True  True]"),
    ];
    for (expr, want) in cases {
        let out = array(&[expr]);
        assert!(out.status.success(), "{expr}: {}", common::stderr(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), *want, "{expr}");
    }
    refused("full_like(zeros(2, dtype='uint8'), 300)", &["300", "uint8"]);
    refused("arange(0, 10, 0)", &["step", "non-zero"]);
    refused(
        "zeros(2, dtype='uint8') + 2**64",
        &["18446744073709551616", "uint8"],
    );
}

#[test]
fn shapes_orders_stencils_and_counts_refuse_what_cannot_be() {
    refused(
        "arange(24).reshape(5, 5)",
        &["cannot reshape array of size 24 into shape (5, 5)"],
    );
    refused("arange(24).reshape(-1, -1)", &["one unknown dimension"]);
    refused("arange(24).reshape(2**62, 2**62)", &["too big"]);
    refused("arange(24).reshape(3, 8, order='F')", &["order='C'"]);
    refused("topk(arange(10), 0)", &["k = 0"]);
    refused("topk(zeros(0), 3)", &["empty"]);
    refused(
        "pad(ones((2, 2)), 1, constant_values=((1, 2), (3, 4), (5, 6)))",
        &["constant_values has 3 entries for an array of 2 dimensions"],
    );
    refused(
        "pad(arange(3, dtype='uint8'), 1, constant_values=((0, 300),))",
        &["300", "uint8"],
    );
    refused("sort(arange(3), axis=2)", &["axis 2 is out of bounds"]);
    refused("pad(arange(4), 2**62)", &["too big"]);
    refused(
        "pad(arange(4), 10**6, mode='reflect')",
        &["repeat the axis more than 256 times"],
    );
    refused("pad(arange(4), 1, mode='bogus')", &["mode \"bogus\""]);
    refused("pad(arange(4), -1)", &["negative"]);
    refused("diff(full((), 1))", &["at least one dimensional"]);
    refused(
        "gradient(arange(2), edge_order=2)",
        &["at least (edge_order + 1) = 3"],
    );
    refused(
        "ndimage.convolve(ones((9, 9)), ones((40, 40)))",
        &["more than 1024 weights"],
    );
    refused(
        "ndimage.convolve(ones((9, 9)), [1, 2, 3])",
        &["must have as many"],
    );
    refused(
        "ndimage.convolve(ones(9), [1, 2, 3], origin=2)",
        &["invalid origin 2"],
    );
    refused("convolve(ones((3, 3)), [1, 2])", &["two 1-d arrays"]);
    refused("convolve(ones(3000), ones(2000))", &["more than", "1024"]);
    refused("convolve(ones(5), [[1, 2], [3]])", &["ragged"]);
    refused(
        "einsum('ij,jk->ik', ones((2, 3)), ones((4, 5)))",
        &["index 'j' has lengths 3 and 4"],
    );
    refused(
        "einsum('ii->i', ones((3, 3)))",
        &["repeats within one operand"],
    );
    refused("einsum('...i->i', ones((3, 3)))", &["'...'"]);
    refused("einsum('ij->k', ones((3, 3)))", &["names no input axis"]);
    refused("einsum('ij', ones(3))", &["name 2 axes"]);
    refused(
        "tensordot(ones((2, 3)), ones((4, 5)), 1)",
        &["shape-mismatch"],
    );
    refused("histogram(arange(10), 5)", &["range=(lo, hi)"]);
    refused(
        "histogram(arange(10), 5, range=(3, 1))",
        &["max must be larger than min"],
    );
    refused(
        "histogram(arange(10), [3, 1, 2])",
        &["increase monotonically"],
    );
    refused(
        "histogram(arange(10), 0, range=(0, 1))",
        &["must be positive"],
    );
    refused("bincount(arange(10))", &["minlength"]);
    refused(
        "bincount(arange(10) * 1.5, minlength=20)",
        &["dtype('float64')"],
    );
    refused(
        "bincount(arange(10), minlength=5)",
        &["found 5, not below minlength=5"],
    );
    refused(
        "bincount(arange(10) - 3, minlength=20)",
        &["must not be negative"],
    );
    refused("array([[1, 2], [3]])", &["ragged"]);
    refused("array(zeros(3)) + array([1, 'a'])", &["expected numbers"]);
    refused("arange(10).sum(split_every=1)", &["at least 2"]);
    refused(
        "arange(10)[[3, 10]]",
        &["index 10 is out of bounds for axis 0 with size 10"],
    );
    // Boolean selections: what needs their unknown length is refused, saying so.
    refused(
        "arange(10)[arange(10) > 5][0]",
        &["boolean selection of shape (nan,)", "compute it first"],
    );
    refused(
        "sort(arange(10)[arange(10) > 5])",
        &["sort", "cannot take a boolean selection"],
    );
    refused(
        "ones((3, 4))[ones((3, 4)) > 0] + ones((3, 4))",
        &["could not be broadcast", "(nan,)", "(3, 4)"],
    );
    refused(
        "arange(10)[arange(10) > 5] + arange(10)[arange(10) > 6]",
        &["different masks"],
    );
    refused(
        "argmin(arange(10)[arange(10) > 5])",
        &["argmin", "not supported"],
    );
    refused(
        "ones((3, 4))[ones(4) > 0]",
        &[
            "boolean index did not match",
            "size of axis is 3",
            "boolean axis is 4",
        ],
    );
    refused("ones((3, 4))[ones((3, 4, 2)) > 0]", &["too many indices"]);
    refused(
        "ones((3, 4))[ones(3) > 0].T",
        &["transposing a boolean selection"],
    );
    // What only the values tell fails when it runs, as numpy's would.
    refused(
        "arange(5)[arange(5) > 9].max()",
        &[
            "zero-size array to reduction operation maximum",
            "selection is empty",
        ],
    );
    refused(
        "nanargmax(array([[1, nan], [nan, nan]]), axis=1)",
        &["All-NaN slice encountered"],
    );
    refused(
        "clip(arange(4, dtype='uint8'), 300, 400)",
        &["300", "uint8"],
    );
    refused(
        "ones((3, 4))[ones(3) > 0] @ ones((4, 2))",
        &["matmul", "cannot take a boolean selection"],
    );
    refused("ones((3, 3))[[0], [1]]", &["only one array"]);
    refused(
        "pad(arange(3, dtype='int8'), 1, constant_values=300)",
        &["300", "int8"],
    );
    refused("array([300], dtype='int8')", &["300", "int8"]);
    refused("arange(10).sum(split_every=-1)", &["not -1"]);
    refused(
        "ones((3, 3))[ones((2, 2), dtype='int64')]",
        &["must be 1-d"],
    );
}
