"""Hand-written, generic customer-feedback vocabulary for the default themes and sentiment.

Written from general knowledge of how customers of products and services (software,
retail, utilities, healthcare, public services) write feedback — never from a data set's
rows. Each theme entry is ``"term[:weight]"``; a term may be a phrase. Weight 1.0 means
the term alone is enough evidence; 0.5 means it needs company; 0 marks an idiom whose words
say nothing of the theme ("pay attention" is not about price); ``word ... word:0`` is an
idiom whose two words may stand apart in one clause ("attention to detail was paid"). Forms of
a word listed apart keep their own weights, and ``=word`` counts only as written (see
``themes``): "=train" is travel, "training" is not. ``~term`` is context, never a clue on its own, nor in company
of other context: it counts only beside a term of the theme that is not marked. Marked are
words that only praise or blame the whole experience ("works great", "excellent care",
"useless", "went well", "much better", "efficient", "smooth", a bare "easy"); durations and
moments ("three weeks", "a long time", "immediately": how long or when, not that anyone
waited); words that name the condition or the service, not how it turned out ("treatment",
"therapy", "my condition", "symptoms"); words with another common sense ("charge": a
battery, "in charge"; "stable": a person's state; "perform" a task; "GPs": doctors; "money": one's
income, benefits or savings, not what the service costs); and, for
``product_quality``, the catch-all words any comment may hold: a bare "quality" (praise or blame
of the whole: "quality of care"), "problem" and "issue" (troubles of any theme), "help" and
"improve" in every form but "helped me" (help on offer, asked for or given by staff, and changes
asked for). "Helped me understand" is an idiom: what was learnt, not how it turned out.
"""

from __future__ import annotations

THEME_TERMS: dict[str, str] = {
    "product_quality": """
        ~quality:0.8, poor quality, high quality, bug, bugs, buggy, glitch, glitches, glitchy, error, errors, broken,
        defect, defective, faulty, fault:0.3, does not work, did not work, not work, stopped working, stop working,
        not working, fix:0.6, fixed:0.5, force close, force closes, ~useless:0.6, ~works great, ~works well,
        ~works perfectly, ~work perfectly, ~works fine, worked:0.5, works:0.5, effective, ineffective, result:0.5,
        results:0.6, outcome, outcomes, ~=treatment:0.4, ~=treatments:0.4, ~therapy:0.4, made a difference, difference:0.6,
        =helped me:0.4, =helps me:0.4, =helping me:0.4, ~helped:0.3, ~improved:0.3, improvement in,
        help me understand:0, help me to understand:0, help me know:0, help me to know:0, help me learn:0,
        help me to learn:0,
        recovery, progress:0.5, benefit, benefited,
        beneficial, life changing, android, ios, device, devices, phone:0.2, tablet, samsung, galaxy, nexus,
        pixel, htc, motorola, huawei, xiaomi, sony, iphone, ipad, version:0.5, update:0.4, updated:0.4,
        upgrade:0.4, compatible, compatibility, incompatible, hardware, camera:0.6, ~gps, bluetooth, sensor,
        wifi:0.5, sd card, ~issue:0.2, ~issues:0.2, ~problem:0.2, ~problems:0.2, product:0.4, products:0.3, materials:0.4,
        durable, flimsy, reliable product, ~standard of care, ~care received:0.6, ~care i received, ~care provided,
        ~excellent care:0.7, ~good care:0.7, ~great care:0.7, ~the care:0.3, crash:0.5, crashes:0.5, crashing:0.5,
        feel better, feeling better, felt better, getting better:0.8, get better:0.6, cope:0.7, coping:0.7,
        coping strategies, well being:0.8, wellbeing:0.8, saved my life, side effects, side effect, ~symptoms:0.7,
        ~my condition:0.7, made things worse, made it worse, changed my life, turned my life around, back on track:0.8,
        got better, gotten better, ~much better:0.5, no better, back to normal, back to my old self, new start,
        fresh start, right track, on track:0.6, saved me, kept me out of hospital, out of hospital:0.6,
        prevented:0.6, ~went well:0.5, surgery:0.6, operation:0.6, rehabilitation, rehab, healing, healed,
        recovered, recovering, worse than before, left me worse, made me worse, healthy:0.6, independence,
        independent:0.6, confidence:0.6, more confident, mental health:0, mood:0.6, life skills, coping skills,
        strategies:0.6, techniques:0.6, tools:0.4,
        """,
    "support_experience": """
        staff, staffs, staffing, team:0.7, nurse, nurses, nursing, doctor, doctors, gp:0.6, receptionist,
        receptionists, reception:0.6, agent, agents, advisor, advisors, adviser, representative, rep:0.6,
        consultant, consultants, therapist, therapists, worker, workers, practitioner, practitioners, clinician,
        clinicians, physio, midwife, midwives, carer, carers, volunteer, volunteers, employee, employees,
        manager:0.7, technician, engineer:0.7, personnel, colleague, colleagues, person:0.4, people:0.4,
        everyone:0.6, everybody:0.6, customer service, customer support, support team, helpdesk, help desk,
        support:0.8, service desk, friendly, unfriendly, kind, kindness, =caring, uncaring, helpful, unhelpful,
        polite, impolite, courteous, respectful, disrespectful, rude, rudeness, attentive, professional,
        professionalism, unprofessional, compassion, compassionate, empathy, empathetic, =understanding:0.7,
        listened, listen, listens, listening, approachable, welcoming, warm:0.6, lovely:0.6, nice:0.3,
        reassuring, reassured, reassurance, dismissive, arrogant, condescending, patronising, patronizing,
        knowledgeable, competent, incompetent, expertise, skilled, =experienced:0.7, trained, training:0.6,
        attitude, manner, manners, bedside manner, responsive:0.5, understaffed, short staffed, short of staff,
        more staff, dedicated:0.6, supportive, support from, treated me, treated with, made me feel, respect,
        dignity, patience, patient with, took the time, take time to, time to listen, =cared, care about,
        hard working, hardworking, amazing team, great team, wonderful, fantastic:0.3, brilliant:0.3,
        gentle, thoughtful, considerate, genuine, they were, he was:0.6, she was:0.6,
        heard:0.7, felt listened, taken seriously, take me seriously, took me seriously, made to feel,
        went out of their way, go out of their way, goes out of her way, goes out of his way, went out of her way,
        went out of his way, above and beyond, over and beyond, extra mile, too much trouble, bent over backwards,
        could not do enough, couldn't do enough, could not have done more, couldn't have done more,
        care and attention, rushed:0.5, put me at ease, at ease:0.7, cheerful, smile:0.6, smiling:0.6, friendliness, courtesy,
        personable, accommodating, welcomed, sympathetic, unsympathetic, sympathise, sympathize, dedication,
        judgemental, judgmental, judged, belittled, belittling, dismissed:0.7, ignored me, ignored:0.6, lied to,
        blunt, abrupt, curt, impatient, clueless, couldn't care less, knew what they were doing,
        as an individual, like a number, involved me, a say in, my views,
        psychiatrist, psychiatrists, psychologist, psychologists, counsellor, counsellors, counselor, counselors,
        tutor, tutors, teacher, teachers, instructor, instructors, health visitor, health visitors, specialist:0.7,
        specialists:0.7, surgeon, surgeons, pharmacist, pharmacists, dentist:0.6, podiatrist, dietitian, optician,
        care coordinator, key worker, cashier, cashiers, waiter, waiters, waitress, concierge, salesperson,
        sales rep, account manager, the lady:0.6,
        """,
    "pricing": """
        price, prices, pricing, priced, cost, costs, costly, expensive, overpriced, cheap, cheaper, cheapest,
        afford, affordable, unaffordable, fee, fees, ~charge, ~charged, ~charges, charging:0.4, billing, bill,
        bills, billed, invoice, invoices, payment, payments, pay, paid, paying, ~money, value for money,
        waste of money, money back, spend money, spent money, spending money, save money, lot of money,
        pay attention:0, paid attention:0, attention paid:0, pay more attention:0, paid more attention:0,
        pay closer attention:0, pay lots of attention:0, pay ... attention:0, paid ... attention:0,
        refund, refunds, refunded, subscription, subscriptions, subscribe, license, licence, licensing,
        licenses, premium, pro version, paid version, full version, free version, free:0.5, purchase,
        purchased, purchases, bought, buy, buying, in app purchase, in app purchases, trial, discount,
        discounts, rip off, ripoff, funding, funded, budget, budgets, dollars, pounds, euros, worth the money,
        worth it:0.4, in charge:0, ads:0.5, adverts:0.5, advertisement:0.5, advertisements:0.5, ad free, remove ads,
        """,
    "missing_features": """
        feature request, missing feature, new feature, more features, add a, add an, add the, add more,
        please add, should add, could add, would be nice, would be great if, would love, i wish, wish it,
        wish there, like to see, would like to be able, ability to, option to, an option, =missing:0.7,
        lacks, lacking, does not have, does not support, no option, no way to, feature:0.6, features:0.6,
        suggestion:0.7, suggest:0.6, request:0.6, more options, allow:0.5, enable:0.4, widget:0.5, dark mode,
        =wish, wish for better:0, wish for more:0, wish to:0, i wish to:0,
        """
    # Words that name a capability or ask for one only in company of another cue ("add pin
    # lock option", "you need a security option"): alone they are as often praise ("exporting
    # is easy", "great options"), a complaint ("could have been better", "lack of staff") or
    # a service ("support for families"). Listed here they also outweigh the theme's default
    # keywords "wish" and "option". "wish" as written asks; "wished", "wishes" mostly do not.
    """
        wishes:0.3, option:0.3, options:0.3, lack:0.5, could have:0.5, should have:0.5, support for:0.5,
        integration:0.5, integrate:0.5, export:0.5, import:0.5, customise:0.3, customize:0.3,
        customization:0.3, customisation:0.3, =add:0.5, need a:0.4, need an:0.4, needs a:0.4, needs an:0.4,
        please make:0.5, would be better if:0.5, removed:0.4,
        """,
    "ease_of_use": """
        ~easy, ~easier, ~easiest, easy to use, simple:0.7, simpler, straightforward, convenient, convenience,
        inconvenient, hassle, hassle free, easy to talk to:0, easy going:0, find fault:0,
        accessible, accessibility, access:0.4, book, booking, booked,
        appointment, appointments, schedule:0.6, scheduling, reschedule, rescheduled, slot, slots,
        contact, contacting, contacted, get through, got through, get hold, phone:0.4, phoned, phone call,
        calls:0.4, call back:0.6, answer the phone, online:0.5, website, web site, portal, interface, ui,
        layout, design:0.7, navigate, navigation, menu, menus, button, buttons, confusing, confused,
        complicated, intuitive, unintuitive, user friendly, user interface, usability, use:0.3, usable,
        unusable, hard to use, difficult to use, font, fonts, text size, screen:0.5, click, clicks, tap,
        swipe, settings, colour, color, colors, colours, =theme:0.5, =themes:0.5, dark mode:0.5, icon, icons, display:0.5,
        notification:0.5, notifications:0.5, keyboard, scroll, scrolling, look:0.4, looks:0.4, clean:0.3,
        cluttered, clunky, find:0.3, hard to find, cannot find, login, log in, sign in, password:0.5,
        account:0.3, form:0.3, forms:0.6, video call, telephone, zoom:0.5, face to face, home visit, visit:0.4,
        visits:0.4, referral:0.5, self refer, choice of:0.5, flexible, flexibility, fit in, around my,
        """,
    "performance_reliability": """
        slow, slower, slowly, slowness, fast, faster, quick, quicker, quickly, speed, speedy, speedily,
        wait, waiting, waited, waits, waiting time, waiting times, waiting list, wait time, delay, delays,
        delayed, late, lateness, prompt, promptly, =timely, time scale, time scales, timescale, timescales,
        time frame, timeframe, turnaround, response time, response times, took a while, takes a while, on time,
        in time, punctual, took ages, ~ages:0.6,
        ~long time, too long, ~hours:0.6, ~hour:0.5, ~weeks:0.6, ~months:0.6, ~days:0.25, ~minutes:0.6, queue,
        queues, crash, crashes, crashing, crashed, freeze, freezes, freezing, frozen, hang, hangs, lag, laggy,
        lags, loading, load:0.5, loads:0.5, battery, batteries, drain, drains, draining, memory, ram,
        storage, space:0.5, mb, gb, cpu, resources, heavy:0.5, lightweight, ~efficient, efficiency,
        inefficient, organised, organized, disorganised, disorganized, organisation, organization,
        well run, chaotic, chaos, ~smooth, ~smoothly, reliable, reliability, unreliable, outage, outages,
        downtime, down:0.3, ~stable, unstable, stability, stuck, timeout, responsive:0.4, lagging, performance,
        ~perform, cancelled, canceled, cancellation, cancellations, seen quickly, ~straight away,
        ~immediately:0.7, waste of time, overheat, overheats, overheating, hot:0.4, data usage, background:0.5,
        sooner:0.7, more often:0.7, often enough:0.7, took a long, taking a long, takes a long,
        still haven't:0.5, still have not:0.5, well organised, badly organised, poorly organised,
        """,
    "onboarding_communication": """
        information, informative, info, informed, inform, explained, explain, explains, explaining,
        explanation, explanations, communication, communicate, communicated, communicating, kept informed,
        keep informed, kept up to date, keep me updated, kept me updated, updates:0.4, told, tell, telling,
        advice, advise, advised, guidance, guide, instructions, instruction, clear:0.6, clearly, unclear,
        clarity, letter, letters, leaflet, leaflets, email:0.5, emails:0.5, text message, newsletter,
        documentation, docs, manual, tutorial, tutorials, onboarding, welcome pack, getting started, set up:0.5,
        setup:0.5, answered my questions, answer questions, questions:0.6, question:0.5, answered:0.6,
        understand:0.5, understood:0.5, aware, feedback:0.4, contacted me:0.5, let me know, let us know,
        discussed, discuss, talk:0.4, talked:0.4, talking:0.4, spoke:0.4, conversation, jargon, learn, learned,
        learnt, learning:0.5, knowledge:0.5, course:0.4, plan:0.4, options explained, next steps, follow up:0.5,
        in touch:0.7, keep in touch, kept in touch, keeping in touch, in the loop, heard back, hear back,
        heard nothing, mixed messages, contradictory:0.6, conflicting:0.6, signposted:0.7, signposting:0.7,
        """,
    "delivery_logistics": """
        delivery, deliveries, =deliver:0.6, =delivered:0.6, =delivers:0.6, delivered on time, delivered late,
        delivered quickly, not delivered, never delivered, got delivered,
        shipping, shipped, ship:0.5, dispatch, dispatched, parcel,
        parcels, package:0.4, packaging, courier, couriers, arrived:0.6, arrival, =tracking, =tracked,
        tracking number, track my order, track the order, track my parcel,
        transport, transportation, bus, buses, taxi, =train:0.6, =trains:0.6, by train, train station,
        travel, travelling, traveling, drive:0.5, driving, journey:0.6, journey time, long journey, journey to,
        distance, far:0.6, location, located, parking, park:0.6, car park, parked,
        =address:0.6, delivery address, wrong address, my address, home address, the address, postcode,
        nearby, near:0.5, close to home, local:0.3, directions, sign posted, signposted,
        signage, find the building, warehouse, stock, out of stock, in stock, collection:0.5, collect, pick up,
        pickup, returns, return:0.3, lost in the post, post:0.4, mail:0.4, venue, =building:0.5, site:0.4,
        """,
}

# Sentiment: word -> polarity weight (positive > 0). Stemmed at load time.
POSITIVE = """
    good:1.2 great:1.6 excellent:2 exceptional:2 outstanding:2 superb:2 brilliant:1.8 fantastic:1.9 amazing:1.9
    awesome:1.8 wonderful:1.9 perfect:1.8 perfectly:1.5 love:1.8 loved:1.8 loving:1.2 lovely:1.6 like:0.6 liked:1
    enjoy:1.3 enjoyed:1.4 enjoyable:1.4 nice:1.1 pleasant:1.3 happy:1.4 pleased:1.4 satisfied:1.3 glad:1.2
    helpful:1.5 friendly:1.4 kind:1.4 =caring:1.4 polite:1.2 professional:1.1 efficient:1.2 easy:1.0 simple:0.6
    fast:0.8 quick:0.8 quickly:0.7 prompt:1.0 promptly:1.0 smooth:1.0 reliable:1.1 recommend:1.4 recommended:1.2
    best:1.5 better:0.6 well:0.7 thank:1.3 thanks:1.3 thankful:1.4 grateful:1.5 appreciate:1.3 appreciated:1.3
    superb:2 impressive:1.5 impressed:1.5 useful:1.2 clear:0.6 informative:1.1 supportive:1.4 attentive:1.3
    =understanding:0.8 compassionate:1.5 respectful:1.2 reassuring:1.3 reassured:1.2 welcoming:1.3 warm:0.8
    comfortable:1.0 clean:0.6 fine:0.5 ok:0.3 okay:0.3 decent:0.6 solid:0.7 beautiful:1.4 cool:0.9 fun:1.2
    addictive:0.8 intuitive:1.2 convenient:1.1 affordable:0.9 valuable:1.1 worth:0.7 exceeded:1.3 top:0.8
    star:0.8 stars:0.5 genius:1.4 incredible:1.8 marvellous:1.8 marvelous:1.8 terrific:1.8 splendid:1.8
    first class:1.0 spot on:1.6 gem:1.4 kudos:1.5 bravo:1.5 pleasure:1.4 delighted:1.8 delightful:1.7 calm:0.6
    safe:0.8 patient:0.5 gentle:1.0 thorough:1.0 knowledgeable:1.1 competent:1.0 dedicated:1.0 positive:1.0
    lifesaver:1.7 life saver:1.7 works:0.5 worked:0.5 improved:0.8 helped:1.0 help:0.4 fab:1.6 fabulous:1.8
    good job:1.5 well done:1.6 no problems:1.2 no issues:1.2 no complaints:1.3 cant fault:1.8 couldnt fault:1.8
    exemplary:1.8 faultless:1.8 flawless:1.6 smoothly:1.0 efficiently:1.0 professionally:1.1 kindness:1.4
    listened:0.8 valued:1.0 informed:0.4 listen:0.3 stress free:1.3 hassle free:1.3 easy to use:1.4
    can not fault:1.8 could not fault:1.8 keep doing:1.2 keep it up:1.4 keep up the good work:1.6 carry on:0.4
    cheerful:1.3 cheery:1.2 upbeat:1.1 praise:1.0 praised:1.0 confident:0.8 relaxed:0.9 smile:0.8 smiling:1.0
    made a difference:1.3 above and beyond:1.8 extra mile:1.6 looked after:1.2 look after:0.6 care about:1.0
    cares about:1.2 cared for:1.0 just what i needed:1.6 exactly what i needed:1.6 what i needed:1.0
    """
NEGATIVE = """
    bad:1.5 poor:1.6 poorly:1.4 terrible:2 horrible:2 awful:2 dreadful:2 appalling:2 disgusting:2 worst:2
    worse:1.3 hate:1.8 hated:1.7 useless:1.8 rubbish:1.8 crap:1.8 sucks:1.7 annoying:1.5 annoyed:1.4
    frustrating:1.6 frustrated:1.5 frustration:1.5 disappointed:1.6 disappointing:1.6 disappointment:1.6
    unhappy:1.5 upset:1.4 angry:1.6 rude:1.8 unhelpful:1.6 unprofessional:1.6 dismissive:1.5 arrogant:1.5
    slow:1.0 slower:0.9 late:0.9 delay:0.9 delayed:1.0 delays:0.9 wait:0.5 waiting:0.6 waited:0.8 crash:1.3
    crashes:1.3 crashing:1.3 crashed:1.2 freeze:1.1 freezes:1.2 frozen:1.0 lag:1.0 laggy:1.2 bug:1.0 bugs:1.0
    buggy:1.4 glitch:1.0 glitches:1.0 broken:1.4 error:0.9 errors:0.9 fail:1.2 fails:1.2 failed:1.2
    failure:1.3 problem:0.8 problems:0.8 issue:0.6 issues:0.6 difficult:0.9 hard:0.5 confusing:1.2
    confused:1.0 complicated:1.0 expensive:1.0 overpriced:1.5 cost:0.2 waste:1.5 wasted:1.4 lack:1.0
    lacking:1.1 lacks:1.0 missing:0.7 lost:0.8 ignored:1.5 ignore:1.0 unclear:1.0 uncomfortable:1.0
    dirty:1.3 noisy:0.9 cold:0.6 stressful:1.3 stress:0.8 worried:0.9 worry:0.7 anxious:0.8 pain:0.6
    painful:1.0 unacceptable:1.8 ridiculous:1.6 pathetic:1.8 shocking:1.7 disgrace:1.8 disgraceful:1.9
    incompetent:1.8 chaotic:1.3 disorganised:1.4 disorganized:1.4 unreliable:1.4 inconsistent:1.0
    complaint:1.0 complain:1.0 complained:1.0 sorry:0.3 unfortunately:1.0 sadly:1.0 shame:1.0 pity:0.9
    never:0.4 nobody:0.8 impossible:1.2 cancelled:0.9 canceled:0.9 drain:1.0 drains:1.1 draining:1.1
    uninstall:1.5 uninstalled:1.5 uninstalling:1.5 refund:0.8 scam:1.9 fraud:1.8 spam:1.3 ads:0.4
    stuck:1.0 mess:1.2 messy:1.1 unable:0.9 cannot:0.4 wrong:1.0 mistake:1.0 mistakes:1.0 fault:0.6
    neglect:1.5 neglected:1.5 unsafe:1.4 uncaring:1.6 cruel:1.8 lazy:1.5 careless:1.5 unfriendly:1.5
    condescending:1.5 patronising:1.5 patronizing:1.5 disrespectful:1.7 long:0.3 ages:0.8 forever:0.8
    too long:1.2 took ages:1.2 not enough:1.0 needs improvement:1.2 could be better:1.1 not great:1.2
    not good:1.5 let down:1.4 fed up:1.5 gave up:1.2 rip off:1.8 not happy:1.6 not working:1.4
    doesnt work:1.5 does not work:1.5 did not work:1.3 stopped working:1.6 force close:1.4 unusable:1.8
    inconvenient:1.1 hassle:1.0 struggle:1.0 struggled:1.0 struggling:1.0 boring:1.3 meh:0.8 mediocre:1.1
    short staffed:1.2 understaffed:1.2 understaffing:1.2 shortage:1.0 shortages:1.0 overstretched:1.0
    overworked:0.8 rushed:1.0 inadequate:1.4 insufficient:1.2 unavailable:0.8 unanswered:1.2 overcrowded:1.0
    short staff:1.2 low staff:1.0 low staffing:1.0 still not:1.0 still no:1.0 still waiting:1.2
    still have not:1.0 still has not:1.0 no one:0.8 no response:1.2 no reply:1.2 no answer:1.0 no help:1.4 no support:1.4
    please help:1.2 can you help:0.8 can someone help:1.0 can anyone help:1.0 on hold:0.9 hung up:1.3 hang up:1.0
    for hours:1.0 hours late:1.2 been waiting:1.0 keep getting:0.8 cannot get:0.8 can not get:0.8
    """

# Phrases that ask for change: suggestions read as (mildly) negative feedback.
SUGGESTION = """
    could be, could have, could do, could improve, should be, should have, should not, needs to, need to,
    need more, needs more, more staff, more time, would be nice, would be better, would be good, would like,
    i wish, wish they, wish it, please add, please make, please fix, improve, improvement, improvements,
    better if, if only, instead of, rather than, too much, too many, too long, too slow, too expensive,
    not enough, more information, more communication, only thing, only issue, only problem, only complaint,
    only criticism, apart from, except for, other than that, shame that, pity that,
    """

# A sentence opening with one of these asks for change ("More parking.", "Listen to me").
REQUEST_START = """
    more less fewer better longer shorter quicker faster earlier sooner cheaper bigger smaller easier clearer
    improve be listen stop make give provide include allow need needs should could would
    perhaps maybe please try ensure offer add introduce reduce increase change fix consider
    have get employ hire recruit pay treat sort speed open answer reply respond call ring explain tell inform
    update train let bring put check look communicate organise organize arrange plan review simplify lower
    fund invest return remove replace allow help support show send extend shorten hurry
    """
# Sentence openers that name something missing ("No parking.", "Not enough staff.", "Lack of beds.").
ABSENCE_START = ("no", "not enough", "lack of", "none of", "never enough")

# Answers that say nothing (after punctuation is stripped): no themes, and the score gives the
# sentiment. Answers that decline to give a view ("not sure") are NO_OPINION_CORES below.
EMPTY_ANSWERS = frozenset(
    phrase.strip()
    for phrase in [
        "\n    n a",
        " na",
        " nil",
        " none",
        " nothing",
        " no",
        " nope",
        " nah",
        " nothing to add",
        " nothing else",
        "\n    nothing more",
        " nothing to say",
        " nothing really",
        " not really",
        " nothing at all",
        " no thanks",
        " no thank you",
        "\n    not applicable",
        " none really",
        " nothing comes to mind",
        " none thanks",
        " nothing thanks",
        " nothing thank you",
        "\n    can not think of anything",
        " cannot think of anything",
        " nothing i can think of",
        "\n    x",
        " xx",
        " xxx",
        " test",
        " no nothing",
        " nothing no",
        " none at all",
        " nothing further",
        "\n    nothing more to add",
        " nothing to report",
        " no suggestions",
        " no comment to make",
        " nothing to improve",
        "\n    nothing needs improving",
        " nothing to change",
        " nothing i would change",
        " all good",
        " no improvements",
        "\n    no improvement needed",
        " no changes",
        " none needed",
        " nothing needed\n    ",
    ]
    if phrase.strip()
)

# Answers that decline to give a view ("Don't know.", "I'm really not sure", "No comment"): no
# themes, like the empty answers above, and a neutral sentiment. "Nothing" answers the
# survey's question (nothing to improve) and takes its sentiment from the score; "not sure"
# says the respondent has no view, so the score does not make the comment positive or negative.
NO_OPINION_CORES = tuple(
    tuple(phrase.split())
    for phrase in [
        "\n    do not know",
        " dont know",
        " not sure",
        " unsure",
        " no idea",
        " idk",
        " can not say",
        " can not comment",
        "\n    no comment",
        " no comments",
        " no opinion",
        " rather not say",
        " prefer not to say",
        " would rather not say",
        "\n    pass",
        " skip",
        " too early to say",
        " too early to tell",
        " too soon to say",
        " too soon to tell\n    ",
    ]
    if phrase.strip()
)
# Words that may stand around those phrases without adding a view of their own.
NO_OPINION_FILLERS = frozenset(
    [
        "i",
        "im",
        "am",
        "really",
        "honestly",
        "sorry",
        "just",
        "yet",
        "at",
        "the",
        "moment",
        "to",
        "be",
        "honest",
        "still",
        "quite",
        "totally",
        "completely",
        "absolutely",
        "well",
        "um",
        "erm",
        "hmm",
    ]
)

INTENSIFIERS = {
    "very": 1.4,
    "really": 1.3,
    "extremely": 1.6,
    "so": 1.3,
    "incredibly": 1.6,
    "absolutely": 1.5,
    "super": 1.4,
    "truly": 1.3,
    "totally": 1.4,
    "completely": 1.4,
    "highly": 1.4,
    "most": 1.2,
    "exceptionally": 1.6,
    "particularly": 1.2,
    "always": 1.1,
    "utterly": 1.6,
    "such": 1.2,
    "slightly": 0.6,
    "bit": 0.6,
    "little": 0.7,
    "somewhat": 0.6,
    "fairly": 0.8,
    "quite": 0.9,
    "rather": 0.8,
    "pretty": 0.9,
    "mostly": 0.8,
    "sometimes": 0.7,
    "occasionally": 0.6,
}

CONTRAST = frozenset(
    ["but", "however", "although", "though", "yet", "whereas", "except", "unfortunately", "sadly", "apart"]
)
