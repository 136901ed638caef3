"""Softmax regression (64 -> 10) on 8x8 digits, trained by mini-batch SGD.

    python3 -um intro --prepare --datadir ./data        # write the data
    python3 -um intro --datadir ./data --rundir RUN     # train
    python3 -um intro --test --datadir ./data --rundir RUN
    python3 -um intro --serve --rundir RUN              # JSON lines on stdin

Standard library only.
"""

import math
import random
import sys
from operator import mul

import digits

NAME = "intro"


def predictor(W, b):
    def predict(x):
        return digits.softmax([sum(map(mul, w, x)) + bk for w, bk in zip(W, b)])
    return predict


def train_batch(W, b, X, Y, lr):
    """One SGD step on the batch (X, Y); updates W and b in place.

    Returns the batch's mean loss and accuracy."""
    loss = 0.0
    correct = 0
    D = []  # per example: dLoss/dlogits = probs - onehot
    for x, y in zip(X, Y):
        z = [sum(map(mul, w, x)) + bk for w, bk in zip(W, b)]
        p = digits.softmax(z)
        loss -= math.log(max(p[y], 1e-12))
        correct += digits.argmax(z) == y
        p[y] -= 1.0
        D.append(p)
    n = len(X)
    scale = lr / n
    XT = list(zip(*X))  # 64 columns of the batch
    for k, g in enumerate(zip(*D)):  # 10 columns of gradients
        W[k] = [wj - scale * sum(map(mul, g, xj)) for wj, xj in zip(W[k], XT)]
        b[k] -= scale * sum(g)
    return loss / n, correct / n


def train(args):
    digits.require_data(args.datadir, ("train", "validation"))
    rundir = digits.resolve_rundir(args)
    images, labels = digits.load(args.datadir, "train")
    val_images, val_labels = digits.load(args.datadir, "validation")

    W = [[0.0] * digits.PIXELS for _ in range(digits.CLASSES)]
    b = [0.0] * digits.CLASSES
    predict = predictor(W, b)
    rng = random.Random(1)

    steps_per_epoch = -(-len(images) // args.batch_size)
    progress = digits.Progress(rundir, steps_per_epoch)
    print("Training %s: %d examples, batch %d, %d epochs"
          % (NAME, len(images), args.batch_size, args.epochs))
    step = 0
    try:
        for _epoch in range(args.epochs):
            for idx in digits.batches(len(images), args.batch_size, rng):
                X = [images[j] for j in idx]
                Y = [labels[j] for j in idx]
                loss, acc = train_batch(W, b, X, Y, args.learning_rate)
                step += 1
                progress.train(step, loss, acc, force=(step == 1))
            val_loss, val_acc = digits.evaluate(predict, val_images, val_labels)
            progress.validation(step, val_loss, val_acc)
    finally:
        progress.close()

    path = digits.save_model(rundir, {"model": NAME, "W": W, "b": b})
    print("Saved model to %s" % path)


def load_predictor(args):
    model = digits.load_model(digits.resolve_rundir(args), NAME)
    return predictor(model["W"], model["b"])


def main():
    args = digits.parse_args(digits.arg_parser(__doc__.splitlines()[0]))
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
