//! Views resolved from files in the original's forms (`tests/fixtures/guild-2017`).

use super::*;
use crate::project::{TargetKind, parse};

const CLASSIC: &str = include_str!("../../../../tests/fixtures/guild-2017/classic/Guild");
const SECTIONS: &str = include_str!("../../../../tests/fixtures/guild-2017/sections/Guild");
const UNNAMED: &str = include_str!("../../../../tests/fixtures/guild-2017/unnamed/Guild");

fn names(fields: &[Field]) -> Vec<&str> {
    fields.iter().map(|f| f.name.as_str()).collect()
}

#[test]
fn the_released_form_names_builtins_and_overrides_them() {
    let project = parse(CLASSIC, "Guild").unwrap();
    let softmax = project.model(Some("softmax")).unwrap();
    let view = project.view(softmax).expect("a view");
    assert_eq!(view.origin, "[view]");
    assert_eq!(
        names(&view.fields),
        vec!["validation-accuracy", "train-accuracy", "steps", "time"]
    );
    let accuracy = &view.fields[0];
    assert_eq!(accuracy.label, "Validation Accuracy");
    assert_eq!(accuracy.source, "series/tf/validation/accuracy");
    assert_eq!(accuracy.reduce, "last");
    assert_eq!(accuracy.format, "0.00%");
    assert_eq!(accuracy.color, "green-700");
    assert_eq!(accuracy.icon, "accuracy");
    assert_eq!(view.fields[1].reduce, "last_5_average");
    assert_eq!(view.fields[3].format, "00:00:00");
    assert_eq!(view.fields[3].reduce, "duration");

    // Two rows, from series-a and series-b; the file's [series "loss"] changes the
    // built-in loss attribute by attribute.
    let rows: Vec<(&str, Vec<&str>)> = view
        .rows
        .iter()
        .map(|r| (r.name.as_str(), r.series.iter().map(|s| s.name.as_str()).collect()))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("series-a", vec!["accuracy"]),
            ("series-b", vec!["loss", "learning-rate", "op-cpu-percent", "op-memory"]),
        ]
    );
    let loss = &view.rows[1].series[0];
    assert_eq!(
        (
            loss.title.as_str(),
            loss.label.as_str(),
            loss.format.as_str(),
            loss.source.as_str()
        ),
        ("Cross Entropy", "nats", "0.00", "tf/.+/loss")
    );
    let memory = &view.rows[1].series[3];
    assert_eq!(
        (memory.title.as_str(), memory.format.as_str()),
        ("Process Memory", "0.0 b")
    );
    assert_eq!(memory.source, "op/mem/rss");

    // Compare columns: batch-size-flag is the flag batch_size; epochs-flag is built in.
    assert_eq!(
        names(&view.compare),
        vec![
            "validation-accuracy",
            "train-accuracy",
            "batch-size-flag",
            "epochs-flag",
            "steps",
            "time"
        ]
    );
    let batch = &view.compare[2];
    assert_eq!(
        (batch.label.as_str(), batch.source.as_str(), batch.attribute.as_str()),
        ("Batch Size", "flags", "batch_size")
    );
}

#[test]
fn a_model_of_its_own_view() {
    let project = parse(CLASSIC, "Guild").unwrap();
    let mlp = project.model(Some("mlp")).unwrap();
    let view = project.view(mlp).expect("a view");
    assert_eq!(view.origin, "[view \"mlp\"]");
    assert_eq!(names(&view.fields), vec!["mlp-loss", "steps"]);
    let loss = &view.fields[0];
    assert_eq!(
        (
            loss.label.as_str(),
            loss.reduce.as_str(),
            loss.format.as_str(),
            loss.color.as_str()
        ),
        ("Loss (last 5)", "last_5_average", "0.0000", "red-700")
    );
    assert_eq!(view.rows.len(), 1);
    assert_eq!(view.rows[0].name, "series");
    // No `compare`: the fields are the columns.
    assert_eq!(names(&view.compare), vec!["mlp-loss", "steps"]);
}

#[test]
fn resources_and_their_flags() {
    let project = parse(CLASSIC, "Guild").unwrap();
    assert_eq!(project.resources.len(), 1);
    let samples = &project.resources[0];
    assert_eq!(samples.kind, TargetKind::Resource);
    assert_eq!(samples.name, "samples");
    assert_eq!(samples.ops[0].command, "samples --sample-dir samples");
    assert_eq!(samples.flags, vec![("sample-count".to_string(), "12".to_string())]);
    assert_eq!(project.target(Some("samples")).unwrap().name, "samples");
    assert_eq!(project.target(None).unwrap().name, "softmax");
    assert_eq!(project.profiles.len(), 1);
    assert_eq!(project.tags, vec!["classic", "2017"]);
    assert_eq!(project.models[0].sources, vec!["*.py"]);
    assert_eq!(project.models[0].runtime.as_deref(), Some("tensorflow"));
    assert!(
        project
            .flags
            .contains(&("learning_rate".to_string(), "0.5".to_string()))
    );
}

#[test]
fn the_last_design_is_its_sections() {
    let project = parse(SECTIONS, "Guild").unwrap();
    let model = project.model(None).unwrap();
    let view = project.view(model).expect("a view");
    assert_eq!(view.origin, "sections");
    assert_eq!(
        names(&view.fields),
        vec!["validation-accuracy", "train-accuracy", "steps", "time"]
    );
    let train = &view.fields[1];
    // Copied from a file template that copied a built-in one, then changed.
    assert_eq!(
        (
            train.color.as_str(),
            train.icon.as_str(),
            train.format.as_str(),
            train.label.as_str()
        ),
        ("teal-400", "accuracy", "0.00%", "Training Accuracy")
    );
    assert_eq!(view.fields[2].reduce, "steps");
    assert_eq!(view.fields[3].format, "00:00:00");
    let series: Vec<&str> = view.rows[0].series.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        series,
        vec![
            "loss",
            "accuracy",
            "op-cpu-percent",
            "op-memory",
            "gpu-percent",
            "gpu-memory"
        ]
    );
    assert_eq!(view.rows[0].series[0].title, "Loss");
    assert_eq!(view.rows[0].series[1].source, "tf/.+/accuracy");
    assert_eq!(names(&view.compare), vec!["validation-accuracy", "batch-size", "steps"]);
    assert_eq!(view.compare[0].format, "0.00%");
    assert_eq!(view.compare[1].attribute, "batch_size");
}

#[test]
fn an_unnamed_model_takes_its_train_module() {
    let project = parse(UNNAMED, "Guild").unwrap();
    let model = project.model(None).unwrap();
    assert_eq!(model.name, "digits");
    assert!(!model.named);
    assert_eq!(model.runtime.as_deref(), Some("tensorflow"));
    // A repeated attribute keeps the last value.
    assert!(project.flags.contains(&("epochs".to_string(), "3".to_string())));
    let view = project.view(model).expect("a view");
    assert_eq!(names(&view.fields), vec!["loss", "steps", "time"]);
    assert_eq!(view.fields[0].source, "series/tf/train/loss");
}

#[test]
fn no_view_without_view_sections() {
    let project = parse("[model \"m\"]\ntrain = m\n", "Guild").unwrap();
    assert_eq!(project.view(project.model(None).unwrap()), None);
}

#[test]
fn tflearn_sources_and_unknown_names() {
    let text = "[model \"m\"]\nruntime = tflearn\ntrain = m\n[view]\nfields = accuracy nothing lr-flag\nseries = loss queues\n";
    let project = parse(text, "Guild").unwrap();
    let view = project.view(project.model(None).unwrap()).unwrap();
    assert_eq!(view.fields[0].source, "series/tf/[^/]*/- (Accuracy|Top_3)/Validation");
    // A name nothing defines is a field with only its name.
    assert_eq!(
        view.fields[1],
        Field {
            name: "nothing".into(),
            label: "nothing".into(),
            ..Field::default()
        }
    );
    assert_eq!(
        (view.fields[2].source.as_str(), view.fields[2].attribute.as_str()),
        ("flags", "lr")
    );
    assert_eq!(view.rows[0].series[0].source, "tf/[^/]*/- Loss/.*");
    assert_eq!(view.rows[0].series[1].source, "");
}

#[test]
fn template_and_fieldref_attributes_fill_what_is_unset() {
    let text = "[model \"m\"]\ntrain = m\n\
                [field \"va\"]\ntemplate = accuracy-field\nsource = series/tf/validation/accuracy\nlabel = VA\n\
                [compare-field \"va2\"]\nfieldref = va\n";
    let project = parse(text, "Guild").unwrap();
    let view = project.view(project.model(None).unwrap()).unwrap();
    let va = &view.fields[0];
    assert_eq!(
        (va.label.as_str(), va.color.as_str(), va.format.as_str()),
        ("VA", "green-700", "0.00%")
    );
    let va2 = &view.compare[0];
    assert_eq!(
        (va2.label.as_str(), va2.source.as_str()),
        ("VA", "series/tf/validation/accuracy")
    );
}

#[test]
fn bad_view_sections_name_their_line() {
    let cases = [
        (
            "[model \"m\"]\ntrain = m\n[view]\nfeilds = a\n",
            "Guild:4: unknown key \"feilds\" in [view] (expected fields, series, series-a, series-b, ..., compare)",
        ),
        (
            "[model \"m\"]\ntrain = m\n[field \"f\"]\nreduce = median\n",
            "Guild:4: unknown reduce \"median\" in [field \"f\"] (expected one of last, first, average, last_5_average, min, max, steps, steps0, duration)",
        ),
        (
            "[model \"m\"]\ntrain = m\n[series \"s\"]\nsource = series/tf/(loss\n",
            "Guild:4: invalid pattern in source \"series/tf/(loss\": unclosed group in [series \"s\"]",
        ),
        (
            "[model \"m\"]\ntrain = m\n[field \"f\"]\nsource = output\n",
            "Guild:4: unknown source \"output\" (expected series/KEY, flags or attrs) in [field \"f\"]",
        ),
        (
            "[model \"m\"]\ntrain = m\n[field]\n",
            "Guild:3: [field] needs a name, like [field \"NAME\"]",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(parse(text, "Guild").unwrap_err().to_string(), expected, "{text}");
    }
}
