"""One-hidden-layer network (64 -> hidden ReLU -> 10) on 8x8 digits, trained by SGD with momentum.

    python3 -um expert --prepare --datadir ./data        # write the data
    python3 -um expert --datadir ./data --rundir RUN     # train
    python3 -um expert --test --datadir ./data --rundir RUN
    python3 -um expert --serve --rundir RUN              # JSON lines on stdin

Standard library only: the inner loops are sum(map(mul, ...)) over
lists so that the arithmetic runs in C.
"""

import math
import random
from operator import add, mul

import digits

NAME = "expert"


def hidden_layer(W1, b1, x):
    h = [sum(map(mul, w, x)) + bj for w, bj in zip(W1, b1)]
    return [v if v > 0.0 else 0.0 for v in h]


def predictor(W1, b1, W2, b2):
    def predict(x):
        h = hidden_layer(W1, b1, x)
        return digits.softmax([sum(map(mul, w, h)) + bk for w, bk in zip(W2, b2)])
    return predict


def _update(w, v, grad, scale, momentum):
    """Momentum SGD on one row: v = momentum * v - scale * grad; w = w + v.

    `grad` None means a zero gradient. Returns the new (w, v)."""
    if grad is None:
        v = [momentum * vi for vi in v]
    else:
        v = [momentum * vi - scale * gi for vi, gi in zip(v, grad)]
    return list(map(add, w, v)), v


def train_batch(model, velocity, X, Y, lr, momentum):
    """One SGD (with momentum) step on the batch (X, Y); updates the
    model and the velocity in place.

    Returns the batch's mean loss and accuracy."""
    W1, b1, W2, b2 = model["W1"], model["b1"], model["W2"], model["b2"]
    W2T = list(zip(*W2))  # hidden x classes
    loss = 0.0
    correct = 0
    H = []   # hidden activations, per example
    D = []   # dLoss/dlogits, per example
    DH = []  # dLoss/dhidden pre-activation, per example
    for x, y in zip(X, Y):
        h = hidden_layer(W1, b1, x)
        z = [sum(map(mul, w, h)) + bk for w, bk in zip(W2, b2)]
        p = digits.softmax(z)
        loss -= math.log(max(p[y], 1e-12))
        correct += digits.argmax(z) == y
        p[y] -= 1.0
        H.append(h)
        D.append(p)
        DH.append([sum(map(mul, wt, p)) if hj > 0.0 else 0.0 for wt, hj in zip(W2T, h)])
    n = len(X)
    scale = lr / n

    V = velocity
    # Output layer: grad W2[k][j] = sum over the batch of D[k] * H[j].
    HT = list(zip(*H))
    DT = list(zip(*D))
    for k, g in enumerate(DT):
        grad = [sum(map(mul, g, hj)) for hj in HT]
        W2[k], V["W2"][k] = _update(W2[k], V["W2"][k], grad, scale, momentum)
    b2[:], V["b2"] = _update(b2, V["b2"], [sum(g) for g in DT], scale, momentum)

    # Hidden layer: grad W1[j][i] = sum over the batch of DH[j] * X[i].
    XT = list(zip(*X))
    DHT = list(zip(*DH))
    for j, g in enumerate(DHT):
        grad = [sum(map(mul, g, xi)) for xi in XT] if any(g) else None
        W1[j], V["W1"][j] = _update(W1[j], V["W1"][j], grad, scale, momentum)
    b1[:], V["b1"] = _update(b1, V["b1"], [sum(g) for g in DHT], scale, momentum)
    return loss / n, correct / n


def init_model(hidden, rng):
    # He initialisation for the ReLU layer, Glorot-ish for the output.
    s1 = math.sqrt(2.0 / digits.PIXELS)
    s2 = math.sqrt(1.0 / hidden)
    return {
        "model": NAME,
        "hidden": hidden,
        "W1": [[rng.gauss(0.0, s1) for _ in range(digits.PIXELS)] for _ in range(hidden)],
        "b1": [0.0] * hidden,
        "W2": [[rng.gauss(0.0, s2) for _ in range(hidden)] for _ in range(digits.CLASSES)],
        "b2": [0.0] * digits.CLASSES,
    }


def zero_velocity(model):
    return {
        "W1": [[0.0] * len(row) for row in model["W1"]],
        "b1": [0.0] * len(model["b1"]),
        "W2": [[0.0] * len(row) for row in model["W2"]],
        "b2": [0.0] * len(model["b2"]),
    }


def model_predictor(model):
    return predictor(model["W1"], model["b1"], model["W2"], model["b2"])


def train(args):
    digits.require_data(args.datadir, ("train", "validation"))
    rundir = digits.resolve_rundir(args)
    images, labels = digits.load(args.datadir, "train")
    val_images, val_labels = digits.load(args.datadir, "validation")

    rng = random.Random(1)
    model = init_model(args.hidden, rng)
    velocity = zero_velocity(model)
    predict = model_predictor(model)  # sees the updates: they happen in place

    steps_per_epoch = -(-len(images) // args.batch_size)
    progress = digits.Progress(rundir, steps_per_epoch)
    print("Training %s: %d examples, batch %d, %d epochs, %d hidden units"
          % (NAME, len(images), args.batch_size, args.epochs, args.hidden))
    step = 0
    try:
        for _epoch in range(args.epochs):
            for idx in digits.batches(len(images), args.batch_size, rng):
                X = [images[j] for j in idx]
                Y = [labels[j] for j in idx]
                loss, acc = train_batch(model, velocity, X, Y, args.learning_rate, args.momentum)
                step += 1
                progress.train(step, loss, acc, force=(step == 1))
            val_loss, val_acc = digits.evaluate(predict, val_images, val_labels)
            progress.validation(step, val_loss, val_acc)
    finally:
        progress.close()

    path = digits.save_model(rundir, model)
    print("Saved model to %s" % path)


def load_predictor(args):
    return model_predictor(digits.load_model(digits.resolve_rundir(args), NAME))


def main():
    parser = digits.arg_parser(__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=32, help="hidden units")
    parser.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    parser.set_defaults(learning_rate=0.1)
    args = digits.parse_args(parser)
    if args.hidden < 1:
        parser.error("--hidden must be at least 1")
    if args.prepare:
        digits.prepare(args.datadir)
    elif args.test:
        digits.run_test(load_predictor(args), args.datadir)
    elif args.serve:
        digits.serve(load_predictor(args), NAME)
    else:
        train(args)


if __name__ == "__main__":
    main()
